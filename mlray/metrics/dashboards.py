"""Grafana dashboards, one per workload plus an overview, generated from the metric definitions.

``python -m mlray.metrics.dashboards clusters/monitoring/dashboards`` writes them (a test checks the
committed files are a fresh generation). Each is importable as it is: the Prometheus datasource is a
template variable (``${datasource}``), as in Ray's own dashboards, so they work in any Grafana that
Ray's integration points at (``RAY_GRAFANA_HOST``, ``RAY_PROMETHEUS_HOST``: see docs/observability.md).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mlray.metrics import features, optimize, serve, train

DATASOURCE = "${datasource}"
WIDTH, HEIGHT, COLUMNS = 12, 8, 2


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[tuple[str, str], ...] = field(default=())  # (name, metric whose label values fill it)

    @property
    def file_name(self) -> str:
        return f"{self.uid}.json"


def rate(series: str, by: str, window: str = "$__rate_interval", selector: str = "") -> str:
    return f"sum by ({by}) (rate({series}{selector}[{window}]))"


def quantile(q: float, histogram: str, by: str, selector: str = "") -> str:
    return f"histogram_quantile({q:g}, {rate(histogram, f'{by}, le', selector=selector)})"


RUN = '{run=~"$run"}'
SOLVE = '{run=~"$run", problem=~"$problem"}'
APP = '{application=~"$application"}'

TRAINING = Dashboard("mlray-training", "mlray / Training", (
    Panel("Epoch", (Query(f"max by (run) ({train.EPOCH.exported}{RUN})", "{{run}}"),)),
    Panel("Loss", (Query(f"max by (run, split) ({train.LOSS.exported}{RUN})", "{{run}} {{split}}"),)),
    Panel("Samples per second per worker",
          (Query(rate(train.SAMPLES.exported, "run, rank", selector=RUN), "{{run}} rank {{rank}}"),), "ops"),
    Panel("Steps per second", (Query(rate(train.STEPS.exported, "run", selector=RUN), "{{run}}"),), "ops"),
    Panel("Seconds since the last durable checkpoint",
          (Query(f"time() - max by (run) ({train.LAST_CHECKPOINT.exported}{RUN})", "{{run}}"),), "s"),
    Panel("Checkpoint duration (p90) and size", (
        Query(quantile(0.9, train.CHECKPOINT_DURATION.series[0], "run", RUN), "{{run}} p90 s"),
        Query(f"max by (run) ({train.CHECKPOINT_SIZE.exported}{RUN}) / 1e6", "{{run}} MB"),
    )),
    Panel("Worker restarts and preemption notices", (
        Query(f"sum by (run) ({train.RESTARTS.exported}{RUN})", "{{run}} restarts"),
        Query(f"sum by (run) ({train.PREEMPTIONS.exported}{RUN})", "{{run}} preemption notices"),
    )),
), (("run", train.EPOCH.exported),))

OPTIMIZATION = Dashboard("mlray-optimization", "mlray / Optimization", (
    Panel("Incumbent objective and best bound", (
        Query(f"min by (run, problem) ({optimize.INCUMBENT.exported}{SOLVE})", "{{problem}} incumbent"),
        Query(f"max by (run, problem) ({optimize.BOUND.exported}{SOLVE})", "{{problem}} bound"),
    )),
    Panel("Gap to best known", (Query(f"min by (run, problem) ({optimize.GAP.exported}{SOLVE})",
                                      "{{problem}}"),), "percentunit"),
    Panel("Seconds since the last improvement",
          (Query(f"time() - max by (run, problem) ({optimize.LAST_IMPROVEMENT.exported}{SOLVE})",
                 "{{problem}}"),), "s"),
    Panel("Improvements per arm",
          (Query(f"sum by (arm) ({optimize.IMPROVEMENTS.exported}{SOLVE})", "{{arm}}"),)),
    Panel("Rounds per arm", (Query(f"sum by (arm) ({optimize.ROUNDS.exported}{SOLVE})", "{{arm}}"),)),
    Panel("Threads per arm", (Query(f"max by (arm) ({optimize.THREADS.exported}{SOLVE})", "{{arm}}"),)),
    Panel("Arm state", (Query(f"max by (arm, state) ({optimize.ARM_STATE.exported}{SOLVE}) == 1",
                              "{{arm}}: {{state}}"),)),
), (("run", optimize.INCUMBENT.exported), ("problem", optimize.INCUMBENT.exported)))

FEATURES = Dashboard("mlray-features", "mlray / Features", (
    Panel("Rows materialized", (Query(f"sum by (view) ({features.ROWS.exported})", "{{view}}"),)),
    Panel("Materialization lag", (Query(f"max by (view) ({features.LAG.exported})", "{{view}}"),), "s"),
    Panel("Online lookup latency (p50, p99)", (
        Query(quantile(0.5, features.LOOKUP.series[0], "feature_service"), "{{feature_service}} p50"),
        Query(quantile(0.99, features.LOOKUP.series[0], "feature_service"), "{{feature_service}} p99"),
    ), "s"),
    Panel("Age of served features and their TTL", (
        Query(f"max by (feature_service) ({features.SERVED_AGE.exported})", "{{feature_service}} age"),
        Query(f"min by (feature_service) ({features.TTL.exported})", "{{feature_service}} TTL"),
    ), "s"),
))

_ERROR_RATIO = (f"{rate(serve.ERRORS.exported, 'role, version', selector=APP)}"
                f" / {rate(serve.REQUESTS.exported, 'role, version', selector=APP)}")
SERVING = Dashboard("mlray-serving", "mlray / Serving", (
    Panel("Canary vs stable: requests per second",
          (Query(rate(serve.REQUESTS.exported, "role, version", selector=APP), "{{role}} {{version}}"),),
          "reqps",
          "Stable and canary side by side, by the version each request was served by."),
    Panel("Canary vs stable: error ratio", (Query(_ERROR_RATIO, "{{role}} {{version}}"),), "percentunit"),
    Panel("Canary vs stable: p99 latency",
          (Query(quantile(0.99, serve.LATENCY.series[0], "role", APP), "{{role}} p99"),), "s"),
    Panel("Canary weight and rollout status", (
        Query(f"max by (canary) ({serve.CANARY_WEIGHT.exported}{APP})", "weight of {{canary}}"),
        Query(f"max by (status) ({serve.ROLLOUT_STATUS.exported}{APP}) == 1", "status: {{status}}"),
    )),
    Panel("Canary failures answered by stable",
          (Query(rate(serve.FALLBACKS.exported, "version", selector=APP), "canary {{version}}"),), "reqps",
          "Requests the canary failed with a server error and stable answered (rollout.fallback_to_stable): "
          "what clients would have seen as errors without the fallback."),
    Panel("Requests by status code",
          (Query(rate(serve.REQUESTS.exported, "code", selector=APP), "{{code}}"),), "reqps"),
    Panel("Batch size (p50)", (Query(quantile(0.5, serve.BATCH_SIZE.series[0], "version"), "{{version}}"),)),
), (("application", serve.REQUESTS.exported),))

OVERVIEW = Dashboard("mlray-overview", "mlray / Overview", (
    Panel("Training: epoch by run", TRAINING.panels[0].queries),
    Panel("Training: seconds since the last durable checkpoint", TRAINING.panels[4].queries, "s"),
    Panel("Optimization: gap to best known", OPTIMIZATION.panels[1].queries, "percentunit"),
    Panel("Features: age of served features and their TTL", FEATURES.panels[3].queries, "s"),
    Panel("Serving: requests per second, canary vs stable", SERVING.panels[0].queries, "reqps"),
    Panel("Serving: error ratio, canary vs stable", SERVING.panels[1].queries, "percentunit"),
), (("run", train.EPOCH.exported), ("problem", optimize.INCUMBENT.exported),
    ("application", serve.REQUESTS.exported)))

DASHBOARDS = (OVERVIEW, TRAINING, OPTIMIZATION, FEATURES, SERVING)


def _variable(name: str, metric: str) -> dict:
    return {
        "name": name, "label": name, "type": "query", "datasource": DATASOURCE,
        "query": {"query": f"label_values({metric}, {name})", "refId": f"{name}-values"},
        "definition": f"label_values({metric}, {name})",
        "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def grafana_json(dashboard: Dashboard) -> dict:
    """The dashboard as Grafana's import expects it."""
    panels = []
    for index, panel in enumerate(dashboard.panels):
        panels.append({
            "id": index + 1,
            "type": "timeseries",
            "title": panel.title,
            "description": panel.description,
            "datasource": DATASOURCE,
            "gridPos": {"x": (index % COLUMNS) * WIDTH, "y": (index // COLUMNS) * HEIGHT,
                        "w": WIDTH, "h": HEIGHT},
            "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
            "targets": [
                {"refId": chr(ord("A") + number), "datasource": DATASOURCE, "expr": query.expr,
                 "legendFormat": query.legend}
                for number, query in enumerate(panel.queries)
            ],
        })
    datasource = {
        "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        "current": {"selected": False, "text": "Prometheus", "value": "Prometheus"}, "hide": 0,
    }
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "tags": ["mlray", "ray"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "templating": {
            "list": [datasource, *(_variable(name, metric) for name, metric in dashboard.variables)]
        },
        "panels": panels,
    }


def files() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {d.file_name: json.dumps(grafana_json(d), indent=2) + "\n" for d in DASHBOARDS}


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files().items():
        (folder / name).write_text(text)
        written.append(folder / name)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "clusters/monitoring/dashboards")):
        print(f"wrote {path}")
