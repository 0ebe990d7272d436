"""End to end on the session's Ray cluster, scraped by a real Prometheus (Debian's package):
a short training, a solve, a materialization with online lookups and serving traffic with an erroring
canary. Every metric and label that a dashboard panel or an alert rule uses must have had data; the
serving error-rate alert fires while the canary is live and clears after the rollout controller has rolled
it back on its own.

With MLRAY_OBSERVABILITY_PNG_DIR set, each dashboard is drawn there from Prometheus's answers to its
panels' own queries (how docs/observability/*.png are made).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.alerts import rule_groups
from mlray.metrics import ALL
from mlray.metrics.dashboards import DASHBOARDS
from mlray.serve.api.schemas import FALLBACK_HEADER
from tests.features.conftest import make_setup
from tests.serve.conftest import Bundles, make_bundle, sample_rows, start_app, stop_app, wait_for
from tests.train.conftest import training_config

from .drawing import concrete, draw
from .prometheus import Prometheus, metrics_and_labels
from .conftest import prometheus_tool

pytestmark = pytest.mark.slow

ERROR_ALERT = "MlrayServingErrorRateHigh"
ROLLOUT_WINDOW_S = 60
SPECS = {name: spec for spec in ALL for name in spec.series}
RAY_ADDED = {"application", "deployment", "replica", "SessionName", "WorkerId", "NodeAddress", "Component"}


def fast_alerts() -> KubeRayConfig:
    """The shipped rules with windows and holds short enough for a test."""
    config = KubeRayConfig()
    alerts = config.monitoring.alerts
    alerts.hold_for, alerts.serving_window, alerts.evaluation_interval = "0s", "20s", "1s"
    return config


def metrics_targets() -> list[str]:
    import ray

    return [f"127.0.0.1:{node['MetricsExportPort']}" for node in ray.nodes() if node["Alive"]]


@pytest.fixture(scope="module")
def prometheus(ray_cluster, tmp_path_factory) -> Iterator[Prometheus]:
    server = Prometheus(prometheus_tool("prometheus"), tmp_path_factory.mktemp("prometheus"),
                        metrics_targets(), rule_groups(fast_alerts()))
    wait_for(server.targets_up, 60, "Prometheus scraping Ray's metrics agent")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def serve_url(ray_cluster) -> Iterator[str]:
    """Serve for this module only: shut down afterwards so tests/serve starts its own on its port."""
    from ray import serve

    from mlray.storage.emulator import free_port

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def materialize_and_look_up(root: Path) -> None:
    from mlray.features.materialize import materialize
    from mlray.features.online import OnlineFeatureEnricher

    setup = make_setup(root)
    materialize(setup.config)
    enricher = OnlineFeatureEnricher(features_config=str(setup.config_path))
    drivers = sorted(setup.data.driver_stats["driver_id"].unique())[:5]
    for driver in drivers * 6:  # spread over ~15 s: several scrapes see lookups going on
        enricher.enrich([{"driver_id": int(driver), "trip_distance_km": 3.0}])
        time.sleep(0.5)


def train(root: Path) -> None:
    from mlray.config import PreprocessJobConfig
    from mlray.train import run_training
    from mlray.usecases.preprocess import run_preprocessing

    data = root / "data"
    run_preprocessing(PreprocessJobConfig(output=str(data), driver_trips={"num_drivers": 40, "hours": 24,
                                                                           "num_trips": 3000}))
    config = training_config(data, str(root / "storage"), f"sqlite:///{root / 'mlflow.db'}",
                             run_name="observed", training={"num_epochs": 8})
    summary = run_training(config)
    assert summary["status"] == "completed", summary


def solve(root: Path) -> None:
    from mlray.config.optimize import OptimizeJobConfig
    from mlray.optimize import SchedulingOptimizer, read_problem
    from mlray.optimize.instances import path

    config = OptimizeJobConfig.model_validate({
        "run_name": "observed-solve", "storage": {"uri": str(root / "storage")}, "output": {"dir": str(root)},
        "mlflow": {"enabled": False}, "solver": {"time_limit": 20, "poll_interval": 0.2},
    })
    result = SchedulingOptimizer(config).parallel_solve(read_problem(path("jsp/ft10")))
    assert result.feasible, result.violations


class Traffic:
    """Prediction requests from a thread until stopped (bounded: at most ``limit`` of them)."""

    def __init__(self, url: str, limit: int = 200_000):
        self.codes: dict[int, int] = {}
        self.fallbacks = 0  # answered by stable after the canary failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, limit), daemon=True)
        self._thread.start()

    def _run(self, url: str, limit: int) -> None:
        rows = sample_rows(50, seed=9)
        with httpx.Client(base_url=url, timeout=30) as client:
            for n in range(limit):
                if self._stop.is_set():
                    return
                response = client.post("/v1/predict", json={"instances": [rows[n % len(rows)]]})
                self.codes[response.status_code] = self.codes.get(response.status_code, 0) + 1
                self.fallbacks += FALLBACK_HEADER in response.headers
                time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def rolled_back(client) -> dict[str, object] | None:
    """The rollout's view once the controller has rolled the canary back, else None."""
    view = client.get("/v1/rollout").json()
    return view if view["status"] == "rolled_back" else None


def epoch_seconds(rfc3339: str) -> float:
    """Prometheus's ``activeAt`` (nanosecond digits and a Z) as seconds since the epoch."""
    whole, _, fraction = rfc3339.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp() + float(f"0.{fraction or 0}")


def serve_with_erroring_canary(serve_url: str, root: Path, prometheus: Prometheus) -> dict[str, object]:
    from mlray.storage import Storage
    from mlray.usecases.driver_trips import FEATURE_COLUMNS

    storage = Storage(str(root))
    make_bundle(storage, "v1", seed=1)
    make_bundle(storage, "broken", seed=3, input_dim=len(FEATURE_COLUMNS) + 1)  # every call fails
    # The controller judges the canary after one window and rolls it back on its own; the window is long
    # enough for Prometheus to see the errors (Ray's metrics agent exports every few seconds) before that.
    client = start_app(serve_url, Bundles(root), rollout={"canary": "broken", "canary_weight": 0.3,
                                                          "window_s": ROLLOUT_WINDOW_S, "min_requests": 10})
    traffic = Traffic(serve_url)
    try:
        fired = wait_for(lambda: prometheus.alerts(ERROR_ALERT), 180,
                         f"{ERROR_ALERT} while the canary is live", interval_s=1)
        rollout = wait_for(lambda: rolled_back(client), 180, "the controller to roll the canary back",
                           interval_s=1)
        wait_for(lambda: not prometheus.alerts(ERROR_ALERT) and not prometheus.alerts(ERROR_ALERT, "pending"),
                 180, f"{ERROR_ALERT} to clear after the rollback", interval_s=1)
        time.sleep(5)  # a few more scrapes of stable alone, for the pictures
    finally:
        traffic.stop()
        client.close()
        stop_app()
    return {"fired": fired, "rollout": rollout, "codes": traffic.codes, "fallbacks": traffic.fallbacks}


def test_every_workload_feeds_every_dashboard_and_alert(prometheus, serve_url, tmp_path):
    started = time.time()
    materialize_and_look_up(tmp_path / "features")
    train(tmp_path / "train")
    solve(tmp_path / "solve")
    serving = serve_with_erroring_canary(serve_url, tmp_path / "serve", prometheus)

    fired = serving["fired"]
    assert {alert["labels"]["role"] for alert in fired} == {"canary"}, fired
    assert {alert["labels"]["version"] for alert in fired} == {"broken"}, fired
    # The controller rolled the canary back by its error rule, after the alert had gone active.
    rollout = serving["rollout"]
    rollback = next(event for event in reversed(rollout["events"]) if event["status"] == "rolled_back")
    assert "error rate" in rollback["reason"], rollback
    assert max(epoch_seconds(alert["activeAt"]) for alert in fired) < rollback["at"], (fired, rollback)
    # Every call to the canary failed; stable answered each of them (rollout.fallback_to_stable), so the
    # alert fired on the canary's errors while no client saw one.
    assert serving["fallbacks"] > 0 and set(serving["codes"]) == {200}, serving

    time.sleep(3)  # the last scrape of metrics recorded just now
    end = time.time()
    expressions = [(f"{d.uid} / {p.title}", q.expr) for d in DASHBOARDS for p in d.panels for q in p.queries]
    rules = rule_groups(KubeRayConfig())[0]["rules"]
    expressions += [(f"alert {rule['alert']}", rule["expr"]) for rule in rules]
    missing = []
    for where, expr in expressions:
        names, labels = metrics_and_labels(concrete(expr))
        found = {name: prometheus.series(name, started, end) for name in names}
        for name, series in found.items():
            if not series:
                missing.append(f"{where}: no data for {name}")
                continue
            own = set(SPECS[name].labels) | RAY_ADDED | ({"le"} if name.endswith("_bucket") else set())
            for label in labels & own:
                if not any(label in labels_of for labels_of in series):
                    missing.append(f"{where}: {name} has no label {label}")
        for label in labels:
            if not any(label in labels_of for series in found.values() for labels_of in series):
                missing.append(f"{where}: no series of {sorted(names)} carries {label}")
    assert missing == [], "\n".join(missing)

    png_dir = os.environ.get("MLRAY_OBSERVABILITY_PNG_DIR")
    if png_dir:
        for dashboard in DASHBOARDS:
            assert draw(dashboard, prometheus, started, end, Path(png_dir) / f"{dashboard.uid}.png") > 0
