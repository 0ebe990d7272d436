"""The alert rules, as a prometheus-operator ``PrometheusRule`` rendered from ``monitoring.alerts``.

Every expression names metrics through their ``MetricSpec`` (mlray/metrics/), so a renamed metric
changes the rules with it, and the tests check each rule against Prometheus's own ``promtool`` and
against a live cluster's export. Rules only see live workloads: Ray stops exporting a process's
metrics when it ends, so a finished run neither pages nor stays "stalled".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlray.config.kuberay import AlertsSection, KubeRayConfig
from mlray.kuberay.manifests import MONITORING_API, Names, metadata
from mlray.metrics import features, optimize, serve, train

RULES_FILE = "monitoring/prometheusrule.yaml"
NOTE = ("Alert rules with the thresholds of monitoring.alerts (mlray/kuberay/alerts.py); "
        "docs/observability.md says what each means.")
GROUP = "mlray"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str  # page: someone acts now; warning: look during working hours
    summary: str
    description: str
    hold: bool = True  # False: fire at once (events such as a rollback)

    def rule(self, alerts: AlertsSection) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": alerts.hold_for if self.hold else "0s",
            "labels": {"severity": self.severity, "team": "mlray"},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def _rate(spec_series: str, window: str, by: str) -> str:
    return f"sum by ({by}) (rate({spec_series}[{window}]))"


def alert_list(alerts: AlertsSection) -> list[Alert]:
    """Every alert, with the thresholds of ``alerts``."""
    window, by_version = alerts.serving_window, "application, version, role"
    errors = _rate(serve.ERRORS.exported, window, by_version)
    requests = _rate(serve.REQUESTS.exported, window, by_version)
    latency = _rate(serve.LATENCY.series[0], window, "application, role, le")
    steps = f"sum by (run) (increase({train.STEPS.exported}[{alerts.training_stalled_for}]))"
    running = f"(max by (run) ({train.RUNNING.exported}) == 1)"
    arms_running = f'(max by (run, problem) ({optimize.ARM_STATE.exported}{{state="running"}}) == 1)'
    checkpoint_age = f"time() - max by (run) ({train.LAST_CHECKPOINT.exported})"
    notices = (f"sum by (run) (max_over_time({train.PREEMPTIONS.exported}"
               f"[{alerts.preemptions_window}]))")
    improved_ago = f"time() - max by (run, problem) ({optimize.LAST_IMPROVEMENT.exported})"
    served_age = f"max by (feature_service) ({features.SERVED_AGE.exported})"
    ttl = f"min by (feature_service) ({features.TTL.exported})"
    return [
        Alert(
            "MlrayServingErrorRateHigh",
            f"({errors} / {requests}) > {alerts.serving_error_ratio:g}",
            "page",
            "{{ $labels.role }} version {{ $labels.version }} fails {{ $value | humanizePercentage }} "
            "of its predictions",
            f"More than {alerts.serving_error_ratio:g} of the prediction requests to the version failed over "
            f"{window} (monitoring.alerts.serving_error_ratio). A canary rolls back by itself if its rules "
            "say so; a stable version needs a look at the replicas' logs.",
        ),
        Alert(
            "MlrayServingLatencyHigh",
            f"histogram_quantile(0.99, {latency}) > {alerts.serving_p99_seconds:g}",
            "page",
            "p99 prediction latency of {{ $labels.role }} is {{ $value | humanizeDuration }}",
            f"The 99th percentile of prediction latency inside the replicas over {window} is above "
            f"{alerts.serving_p99_seconds:g} s (monitoring.alerts.serving_p99_seconds).",
        ),
        Alert(
            "MlrayCanaryRolledBack",
            f'max by (application) ({serve.ROLLOUT_STATUS.exported}{{status="rolled_back"}}) == 1',
            "warning",
            "The canary of {{ $labels.application }} was rolled back",
            "The rollout controller took the canary out of traffic: it broke its error or latency rules. "
            "The reason is in GET /v1/rollout and the controller's log.",
            hold=False,
        ),
        Alert(
            "MlrayTrainingStalled",
            f"({steps} == 0) and on (run) {running}",
            "page",
            "Training run {{ $labels.run }} took no step for " + alerts.training_stalled_for,
            "The run's training loop runs but took no optimizer step for "
            f"{alerts.training_stalled_for} (monitoring.alerts.training_stalled_for): a hung collective, "
            "a stuck data loader or workers waiting for resources.",
            hold=False,
        ),
        Alert(
            "MlrayTrainingCheckpointTooOld",
            f"({checkpoint_age}) > {alerts.training_checkpoint_max_age_seconds:g} and on (run) {running}",
            "warning",
            "Training run {{ $labels.run }} has no durable checkpoint for {{ $value | humanizeDuration }}",
            "A preemption now would lose more than "
            f"{alerts.training_checkpoint_max_age_seconds:g} s of training "
            "(monitoring.alerts.training_checkpoint_max_age_seconds): check checkpoint uploads and the "
            "checkpointing frequency.",
        ),
        Alert(
            "MlrayTrainingPreemptedRepeatedly",
            f"{notices} >= {alerts.preemptions_max}",
            "warning",
            "Training run {{ $labels.run }} got {{ $value }} preemption notices in "
            + alerts.preemptions_window,
            "Spot capacity keeps going away under the run (monitoring.alerts.preemptions_max within "
            "preemptions_window): consider on-demand workers for it.",
            hold=False,
        ),
        Alert(
            "MlraySolverNotImproving",
            f"({improved_ago}) > {alerts.solver_no_improvement_seconds:g} "
            f"and on (run, problem) {arms_running}",
            "warning",
            "Solver run {{ $labels.run }} on {{ $labels.problem }} has not improved for "
            "{{ $value | humanizeDuration }}",
            f"The incumbent did not improve for {alerts.solver_no_improvement_seconds:g} s "
            "(monitoring.alerts.solver_no_improvement_seconds): stop the run or give it other arms.",
        ),
        Alert(
            "MlrayFeaturesStale",
            f"{served_age} > on (feature_service) ({ttl} * {alerts.feature_age_ttl_factor:g})",
            "page",
            "Feature service {{ $labels.feature_service }} serves features "
            "{{ $value | humanizeDuration }} old",
            "Online lookups return features older than their TTL times "
            f"{alerts.feature_age_ttl_factor:g} (monitoring.alerts.feature_age_ttl_factor): "
            "materialization has not run or failed.",
        ),
    ]


def rule_groups(config: KubeRayConfig) -> list[dict[str, Any]]:
    """The ``groups`` of a Prometheus rule file (also what ``promtool check rules`` reads)."""
    alerts = config.monitoring.alerts
    return [{
        "name": GROUP,
        "interval": alerts.evaluation_interval,
        "rules": [alert.rule(alerts) for alert in alert_list(alerts)],
    }]


def prometheus_rule(config: KubeRayConfig) -> dict[str, Any]:
    """The rules for the Prometheus operator, labelled like the monitors: the same Prometheus selects them."""
    meta = metadata(config, Names(config)("alerts"))
    meta["labels"].update(config.monitoring.monitor_labels)
    return {"apiVersion": MONITORING_API, "kind": "PrometheusRule", "metadata": meta,
            "spec": {"groups": rule_groups(config)}}
