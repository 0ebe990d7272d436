"""The alert rules: valid for Prometheus (``promtool check rules``), and each one fires on the series
it is about and stays quiet on healthy ones (``promtool test rules``); the rendered PrometheusRule
validates with the other manifests and a broken one does not."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay import crds
from mlray.kuberay.alerts import RULES_FILE, alert_list, prometheus_rule, rule_groups
from mlray.kuberay.schemas import schema_set
from mlray.metrics import features, optimize, serve, train

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG = KubeRayConfig()


def series(spec_name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{spec_name}{{{inner}}}", "values": values}


def expected(alert: str, **labels: str) -> dict[str, Any]:
    severity = next(a.severity for a in alert_list(CONFIG.monitoring.alerts) if a.name == alert)
    return {"exp_labels": {**labels, "severity": severity, "team": "mlray"}}


def case(eval_time: str, alert: str, *firing: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": alert, "exp_alerts": list(firing)}


CANARY = {"application": "mlray", "version": "v2", "role": "canary"}
STABLE = {"application": "mlray", "version": "v1", "role": "stable"}


def bucket_series(name: str, labels: dict[str, str], slow: bool) -> list[dict[str, str]]:
    """A latency histogram: 10 requests a minute, all under 0.1 s, or all between 1 and 2.5 s."""
    rows = []
    for le in ("0.1", "1.0", "2.5", "+Inf"):
        fast_enough = float(le) >= (2.5 if slow else 0.1)
        rows.append(series(name, {**labels, "le": le}, "0+10x40" if fast_enough else "0x40"))
    return rows


def unit_tests() -> dict[str, Any]:
    """Series (one a minute) that make each alert fire, beside series that must not."""
    slow_app, fast_app = {"application": "slow", "role": "stable"}, {"application": "fast", "role": "stable"}
    input_series = [
        # serving: the canary fails 10 of 60 requests a minute, stable 1 of 100
        series(serve.REQUESTS.exported, {**CANARY, "code": "200"}, "0+50x40"),
        series(serve.REQUESTS.exported, {**CANARY, "code": "500"}, "0+10x40"),
        series(serve.ERRORS.exported, {**CANARY, "kind": "server"}, "0+10x40"),
        series(serve.REQUESTS.exported, {**STABLE, "code": "200"}, "0+99x40"),
        series(serve.REQUESTS.exported, {**STABLE, "code": "500"}, "0+1x40"),
        series(serve.ERRORS.exported, {**STABLE, "kind": "server"}, "0+1x40"),
        *bucket_series(serve.LATENCY.series[0], slow_app, slow=True),
        *bucket_series(serve.LATENCY.series[0], fast_app, slow=False),
        series(serve.ROLLOUT_STATUS.exported, {"application": "mlray", "status": "rolled_back"}, "0x10 1x30"),
        series(serve.ROLLOUT_STATUS.exported, {"application": "other", "status": "rolled_back"}, "0x40"),
        # training: "stuck" stops stepping at minute 5, "moving" steps on; both export their epoch
        series(train.STEPS.exported, {"run": "stuck", "rank": "0"}, "0+10x5 50x35"),
        series(train.STEPS.exported, {"run": "moving", "rank": "0"}, "0+10x40"),
        series(train.STEPS.exported, {"run": "ended", "rank": "0"}, "0+10x5 50x35"),  # finished at minute 5
        series(train.RUNNING.exported, {"run": "stuck"}, "1x120"),
        series(train.RUNNING.exported, {"run": "moving"}, "1x120"),
        series(train.RUNNING.exported, {"run": "ended"}, "1x5 0x115"),
        # checkpoints: "stuck" and "ended" checkpointed at time 0 only, "moving" every minute
        series(train.LAST_CHECKPOINT.exported, {"run": "stuck"}, "0x120"),
        series(train.LAST_CHECKPOINT.exported, {"run": "ended"}, "0x120"),
        series(train.LAST_CHECKPOINT.exported, {"run": "moving"}, "0+60x120"),
        # preemption notices: three workers of "spot" each got one, one worker of "calm"
        series(train.PREEMPTIONS.exported, {"run": "spot", "WorkerId": "a"}, "1x10"),
        series(train.PREEMPTIONS.exported, {"run": "spot", "WorkerId": "b"}, "_x10 1x10"),
        series(train.PREEMPTIONS.exported, {"run": "spot", "WorkerId": "c"}, "_x20 1x10"),
        series(train.PREEMPTIONS.exported, {"run": "calm", "WorkerId": "d"}, "1x30"),
        # solver: "flat" and "done" last improved at time 0 ("done"'s arms ended), "improving" every minute
        series(optimize.LAST_IMPROVEMENT.exported, {"run": "flat", "problem": "ft10"}, "0x60"),
        series(optimize.LAST_IMPROVEMENT.exported, {"run": "done", "problem": "ft10"}, "0x60"),
        series(optimize.LAST_IMPROVEMENT.exported, {"run": "improving", "problem": "ft10"}, "0+60x60"),
        *(series(optimize.ARM_STATE.exported,
                 {"run": run, "problem": "ft10", "arm": "cp_sat", "state": "running"}, values)
          for run, values in (("flat", "1x60"), ("improving", "1x60"), ("done", "1x10 0x50"))),
        # features: one service serves 25 h old features with a 24 h TTL, the other 100 s old ones
        series(features.SERVED_AGE.exported, {"feature_service": "old"}, "90000x20"),
        series(features.TTL.exported, {"feature_service": "old"}, "86400x20"),
        series(features.SERVED_AGE.exported, {"feature_service": "fresh"}, "100x20"),
        series(features.TTL.exported, {"feature_service": "fresh"}, "86400x20"),
    ]
    cases = [
        case("4m", "MlrayServingErrorRateHigh"),  # over the limit, not yet for hold_for (5m)
        case("15m", "MlrayServingErrorRateHigh", expected("MlrayServingErrorRateHigh", **CANARY)),
        case("15m", "MlrayServingLatencyHigh", expected("MlrayServingLatencyHigh", **slow_app)),
        case("5m", "MlrayCanaryRolledBack"),
        case("12m", "MlrayCanaryRolledBack", expected("MlrayCanaryRolledBack", application="mlray")),
        case("15m", "MlrayTrainingStalled"),  # 10 minutes without a step: under training_stalled_for
        case("25m", "MlrayTrainingStalled", expected("MlrayTrainingStalled", run="stuck")),
        case("90m", "MlrayTrainingCheckpointTooOld", expected("MlrayTrainingCheckpointTooOld", run="stuck")),
        case("30m", "MlrayTrainingCheckpointTooOld"),
        case("15m", "MlrayTrainingPreemptedRepeatedly"),
        case("25m", "MlrayTrainingPreemptedRepeatedly",
             expected("MlrayTrainingPreemptedRepeatedly", run="spot")),
        case("20m", "MlraySolverNotImproving"),
        case("40m", "MlraySolverNotImproving",
             expected("MlraySolverNotImproving", run="flat", problem="ft10")),
        case("10m", "MlrayFeaturesStale", expected("MlrayFeaturesStale", feature_service="old")),
    ]
    return {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": cases}],
    }


def write_rules(folder: Path, config: KubeRayConfig = CONFIG, annotations: bool = True) -> Path:
    """The rule file; without annotations for ``promtool test rules``, which would compare their texts."""
    groups = rule_groups(config)
    if not annotations:
        for rule in groups[0]["rules"]:
            rule.pop("annotations")
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_every_alert_has_a_firing_case():
    tested = {c["alertname"] for c in unit_tests()["tests"][0]["alert_rule_test"] if c["exp_alerts"]}
    assert tested == {alert.name for alert in alert_list(CONFIG.monitoring.alerts)}


def test_promtool_accepts_the_rules(promtool, tmp_path):
    result = run([str(promtool), "check", "rules", str(write_rules(tmp_path))])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_list(CONFIG.monitoring.alerts))} rules found" in result.stdout


def test_alerts_fire_on_their_series_and_not_on_healthy_ones(promtool, tmp_path):
    write_rules(tmp_path, annotations=False)
    tests_file = tmp_path / "tests.yaml"
    tests_file.write_text(yaml.safe_dump(unit_tests(), sort_keys=False))
    result = run([str(promtool), "test", "rules", str(tests_file)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_a_rule_that_would_not_fire_where_it_should(promtool, tmp_path):
    """The unit tests can fail: with the error limit raised past the canary's 1/6, they do."""
    lenient = CONFIG.model_copy(deep=True)
    lenient.monitoring.alerts.serving_error_ratio = 0.5
    write_rules(tmp_path, lenient, annotations=False)
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(unit_tests(), sort_keys=False))
    result = run([str(promtool), "test", "rules", str(tmp_path / "tests.yaml")])
    assert result.returncode != 0
    assert "MlrayServingErrorRateHigh" in result.stdout + result.stderr


def test_committed_rule_is_the_rendered_one_and_validates():
    committed = list(yaml.safe_load_all((PROJECT_ROOT / "clusters" / RULES_FILE).read_text()))
    assert committed == [prometheus_rule(CONFIG)]
    schemas = schema_set(CONFIG.kubernetes_version, crds.directories())
    assert schemas.validate(committed[0], RULES_FILE) == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda rule: rule["spec"]["groups"][0]["rules"][0].update({"for": "five minutes"}),
         "spec.groups[0].rules[0].for"),
        (lambda rule: rule["spec"]["groups"][0]["rules"][0].update({"severity": "page"}),
         "spec.groups[0].rules[0]"),
        (lambda rule: rule["spec"]["groups"][0].pop("name"), "spec.groups[0]"),
        (lambda rule: rule["spec"]["groups"][0]["rules"][0].update({"keep_firing_for": ""}),
         "spec.groups[0].rules[0].keep_firing_for"),
        (lambda rule: rule["spec"]["groups"][0].update({"partial_response_strategy": "retry"}),
         "spec.groups[0].partial_response_strategy"),
    ],
    ids=["bad-duration", "unknown-field", "group-without-name", "empty-keep-firing", "bad-response-strategy"],
)
def test_a_broken_rule_is_reported_where_it_is_broken(change, path):
    rule = copy.deepcopy(prometheus_rule(CONFIG))
    change(rule)
    problems = schema_set(CONFIG.kubernetes_version, crds.directories()).validate(rule, RULES_FILE)
    assert [problem.path for problem in problems] == [path]
