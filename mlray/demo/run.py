"""The platform end to end on one machine.

preprocess -> features (apply + materialize) -> train -> solve -> serve -> query -> batch inference.

Each step calls the same library function as its own job (``jobs.preprocess``,
``jobs.materialize``, ``jobs.train``, ``jobs.optimize``, ``serve run``,
``jobs.batch_predict``), with the configs in ``configs/`` plus the demo's
overrides, on a local Ray cluster and a local GCS emulator that
``LocalServices`` starts and always stops.

Every run trains and solves afresh (run names carry the run's start time), and
the demo fails unless every step ran.

Length: the demo is one recipe, read top to bottom in the order it runs; each step is a short function
over the library, and splitting them apart would hide the order.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlray.config.batch_predict import BatchPredictJobConfig
from mlray.config.demo import DemoConfig
from mlray.config.features import FeaturesConfig
from mlray.config.inference import InferenceConfig
from mlray.config.loader import load_config
from mlray.config.optimize import OptimizeJobConfig
from mlray.config.preprocess import PreprocessJobConfig
from mlray.config.train import TrainJobConfig
from mlray.demo.services import LocalServices
from mlray.storage.emulator import free_port
from mlray.usecases import driver_trips

APP_NAME = "mlray-demo"
STEPS = ("preprocess", "features", "train", "solve", "serve", "query", "batch inference")
STABLE, CANARY = "v1", "v2"
PROGRESS_LINES = 4  # the query burst reports after each quarter, not per request
DASHBOARD_WAIT_S = 60


@dataclass
class StepLog:
    """Which of the demo's steps ran to the end; the demo fails unless all of them did."""

    done: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str, detail: str) -> Iterator[None]:
        print(f"\n==> {STEPS.index(name) + 1}/{len(STEPS)} {name}: {detail}", flush=True)
        started = time.monotonic()
        yield
        self.done.append(name)
        print(f"    {name} done in {time.monotonic() - started:.0f} s", flush=True)

    def missing(self) -> list[str]:
        return [name for name in STEPS if name not in self.done]


def local_storage(config: DemoConfig) -> str:
    """The storage.uri of the demo's local steps (data, feature store, solves): under output_dir, apart
    from what ``make demo-*`` and the jobs leave in runs/storage."""
    return str(Path(config.output_dir, "storage").resolve())


def preprocess(config: DemoConfig) -> dict[str, Any]:
    from mlray.usecases.preprocess import run_preprocessing

    overrides = [f"storage.uri={local_storage(config)}"]
    return run_preprocessing(load_config(PreprocessJobConfig, config.preprocess_config, overrides))


def feature_store_overrides(config: DemoConfig) -> list[str]:
    """Sources from the demo's preprocess step; registry and online store under output_dir."""
    return [f"storage.uri={local_storage(config)}",
            f"repo.state_dir={Path(config.output_dir, 'feature_store').resolve()}"]  # fmt: skip


def materialize_features(config: DemoConfig) -> dict[str, Any]:
    from mlray.features.materialize import materialize_on_ray

    # A fresh store each run, so that materialize_incremental loads every row, not only those since the last run.
    shutil.rmtree(Path(config.output_dir, "feature_store"), ignore_errors=True)
    report = materialize_on_ray(load_config(FeaturesConfig, config.features_config, feature_store_overrides(config)))
    return {"status": report["status"], "rows": {name: view.get("source_rows") for name, view in report["views"].items()}}


def train(
    config: DemoConfig, storage_uri: str, prepared: dict[str, Any], run_stamp: str, tracking_uri: str
) -> dict[str, Any]:
    """Checkpoints and model to ``storage_uri`` (the emulator's bucket), data from the preprocess step."""
    from mlray.train import run_training

    positive_rate = prepared["positive_rate"]
    overrides = [*config.training_overrides, f"storage.uri={storage_uri}", f"run_name=demo-train-{run_stamp}",
                 f"mlflow.tracking_uri={tracking_uri}",
                 f"data.kwargs.path={prepared['artifacts']['training']}"]  # fmt: skip
    training = load_config(TrainJobConfig, config.train_config, overrides)
    trained = run_training(training)
    summary = {k: trained.get(k) for k in ("status", "metrics", "model_uri", "registered_model", "best_epoch")}
    summary["mlflow_tracking_uri"] = absolute_sqlite_uri(training.mlflow.tracking_uri)
    # What a model that learned nothing scores: always the majority class.
    summary["baseline_accuracy"] = round(max(positive_rate, 1 - positive_rate), 4)
    return summary


def solve(config: DemoConfig, instance: str, run_stamp: str) -> dict[str, Any]:
    """A fresh solve: the run name is new each run, so no checkpoint of an earlier run is resumed."""
    from mlray.optimize import read_problem
    from mlray.optimize.optimizer import optimizer_for

    run_name = f"demo-{Path(instance).stem}-{run_stamp}"
    solver_config = load_config(
        OptimizeJobConfig, config.optimize_config, [
            f"solver.time_limit={config.solve_time_limit}",
            "mlflow.enabled=false",
            f"run_name={run_name}",
            f"storage.uri={local_storage(config)}",
        ],
    )
    problem = read_problem(instance)
    summary = optimizer_for(problem, solver_config).parallel_solve(problem).summary()
    resumed = f", resumed from a checkpoint at {summary['resumed_from']}" if summary["resumed_from"] else ""
    print(f"    {summary['problem']} ({run_name}{resumed}): objective {summary['objective']}", flush=True)
    return {**summary, "run_name": run_name}


def inference_config(config: DemoConfig, trained: dict[str, Any], storage_uri: str) -> InferenceConfig:
    """configs/inference.yaml with the trained model as stable, its registry copy as canary, online features on.

    Models load only from the training run's storage and the MLflow registry (``models.trust.allowed_roots``).
    """
    base = load_config(InferenceConfig, config.inference_config).model_dump(mode="json")
    canary_uri = trained.get("registered_model") or trained["model_uri"]
    base["models"].update(
        versions={STABLE: trained["model_uri"], CANARY: canary_uri},
        stable=STABLE,
        feature_names=list(driver_trips.FEATURE_COLUMNS),
    )
    trained_root = storage_uri if "://" in storage_uri else str(Path(storage_uri).resolve())
    base["models"]["trust"]["allowed_roots"] = [trained_root, "models:/"]
    base["rollout"].update(canary=CANARY, canary_weight=config.canary_weight, promote_after_windows=None)
    base["mlflow"]["tracking_uri"] = trained["mlflow_tracking_uri"]
    base["features"] = {
        "enricher": "mlray.features.online:OnlineFeatureEnricher",
        # replicas may run in another folder: give them absolute paths
        "kwargs": {"features_config": str(Path(config.features_config).resolve()),
                   "overrides": feature_store_overrides(config),
                   "feature_names": list(driver_trips.FEATURE_COLUMNS)},
    }  # fmt: skip
    return InferenceConfig.model_validate(base)


def absolute_sqlite_uri(uri: str) -> str:
    """A relative ``sqlite:///`` store made absolute, so that replicas in another folder find it."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix):]).resolve())
    return uri


def start_serving(inference: InferenceConfig) -> str:
    from ray import serve

    from mlray.serve.app import build_application

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_application(inference), name=APP_NAME, route_prefix="/")
    return f"http://127.0.0.1:{port}"


def query_instances(config: DemoConfig, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``num_queries`` instances: most with the full feature vector, ``entity_key_share`` with entity keys only."""
    rows = frame.sample(n=config.num_queries, replace=len(frame) < config.num_queries, random_state=7)
    by_keys = np.random.default_rng(7).uniform(size=len(rows)) < config.entity_key_share
    key_fields = [driver_trips.ENTITY_COLUMN, *driver_trips.REQUEST_FEATURES]
    return [
        {name: _plain(row[name]) for name in (key_fields if keys_only else driver_trips.FEATURE_COLUMNS)}
        for (_, row), keys_only in zip(rows.iterrows(), by_keys, strict=True)
    ]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def post_with_progress(
    url: str, bodies: list[dict[str, Any]], concurrency: int, headers: list[dict[str, str]] | None = None
) -> list[Any]:
    """``post_concurrently`` in a few chunks: a bar on a terminal, one plain line per chunk in logs."""
    from mlray.metrics.progress import Progress
    from mlray.serve.api.client import answered, post_concurrently

    responses: list[Any] = []
    chunk = max(1, -(-len(bodies) // PROGRESS_LINES))
    with Progress("    queries", total=len(bodies), stream=sys.stdout, interval_s=0) as progress:
        for start in range(0, len(bodies), chunk):
            end = start + chunk
            responses += post_concurrently(url, bodies[start:end], concurrency,
                                           headers[start:end] if headers else None)
            progress.update(len(responses), f"{sum(map(answered, responses))} answered")
    return responses


def query(config: DemoConfig, url: str, instances: list[dict[str, Any]]) -> dict[str, Any]:
    import httpx

    from mlray.serve.api.client import answered

    responses = post_with_progress(url, [{"instances": [i]} for i in instances], config.query_concurrency)
    versions: collections.Counter[str] = collections.Counter()
    latencies_ms, failures, by_keys = [], [], 0
    for instance, response in zip(instances, responses, strict=True):
        if answered(response):
            versions[response.json()["model_version"]] += 1
            latencies_ms.append(response.elapsed.total_seconds() * 1000)
            by_keys += driver_trips.ENTITY_COLUMN in instance
        else:
            failures.append(response.text[:200] if isinstance(response, httpx.Response) else repr(response))
    num_answered = sum(versions.values())
    rollout = httpx.get(f"{url}/v1/rollout", timeout=30).json()
    return {
        "rollout": {"status": rollout["status"], "reason": rollout.get("reason")},
        "url": url,
        "answered": num_answered,
        "failed": len(failures),
        "failures": failures[:3],
        "answered_by_entity_keys": by_keys,
        "versions": dict(versions),
        "canary_share": round(versions.get(CANARY, 0) / num_answered, 3) if num_answered else None,
        "latency_ms": {f"p{q}": round(float(np.percentile(latencies_ms, q)), 1) for q in (50, 99)} if latencies_ms else None,
    }


def batch_predict(config: DemoConfig, trained: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    from mlray.serve.offline.batch import run_batch_inference

    output = Path(config.output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    inputs = frame.sample(n=min(config.batch_rows, len(frame)), random_state=11).reset_index(drop=True)
    inputs.insert(0, "row_id", range(len(inputs)))
    input_path = output / "batch_input.parquet"
    inputs.to_parquet(input_path, index=False)
    batch = load_config(BatchPredictJobConfig, config.batch_predict_config, [
        f"batch.input_uri={input_path}",
        f"batch.output_uri={output / 'predictions'}",
        f"batch.model_uri={trained['model_uri']}",
    ])  # fmt: skip
    report = run_batch_inference(batch)
    return {**report, "input_uri": str(input_path)}


def compare_batch_with_online(url: str, version_header: str, batch: dict[str, Any]) -> dict[str, Any]:
    """Send each batch input row to the stable version online; the largest probability difference."""
    from mlray.serve.api.client import answered

    inputs = pd.read_parquet(batch["input_uri"])
    offline = pd.read_parquet(batch["output_uri"]).set_index("row_id").loc[inputs["row_id"]]
    bodies = [{"instances": [[float(v) for v in row]]} for row in inputs[driver_trips.FEATURE_COLUMNS].to_numpy()]
    responses = post_with_progress(url, bodies, concurrency=8, headers=[{version_header: STABLE}] * len(bodies))
    failed = [r for r in responses if not answered(r)]
    if failed:
        return {"rows": len(bodies), "equal": False, "error": f"{len(failed)} online requests failed: {failed[0]!r}"}
    online = [r.json()["predictions"][0] for r in responses]
    labels_equal = [p["label"] for p in online] == list(offline["label"])
    difference = max(
        float(np.max(np.abs(np.asarray(p["probabilities"]) - np.asarray(q))))
        for p, q in zip(online, offline["probabilities"], strict=True)
    )
    return {"rows": len(bodies), "labels_equal": labels_equal, "max_probability_difference": difference,
            "equal": labels_equal and difference <= 1e-5}  # fmt: skip


def dashboard_status(url: str) -> int:
    """The HTTP status of the Ray dashboard's page, once it answers (it starts a moment after ``ray.init``)."""
    import httpx

    deadline = time.monotonic() + DASHBOARD_WAIT_S
    while True:
        try:
            return httpx.get(url, timeout=5).status_code
        except httpx.TransportError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray dashboard at {url} did not answer in {DASHBOARD_WAIT_S} s: {exc}")
            time.sleep(0.5)


def run_steps(config: DemoConfig, services: LocalServices, summary: dict[str, Any], steps: StepLog) -> None:
    status = dashboard_status(services.dashboard_url)
    summary["dashboard_url"], summary["dashboard_status"] = services.dashboard_url, status
    if status != 200:
        raise RuntimeError(f"the Ray dashboard at {services.dashboard_url} answered HTTP {status}")
    print(f"Ray dashboard: {services.dashboard_url} (answering now; it stops when the demo ends)", flush=True)
    summary["gcs_emulator"] = services.emulator.url if services.emulator else None
    summary["mlflow_url"] = services.mlflow.url
    summary["mlflow_store"] = str(services.mlflow.backend_db.resolve())
    storage_uri = f"gs://{config.bucket}/train" if config.use_gcs_emulator else f"{config.output_dir}/storage"
    run_stamp = time.strftime("%Y%m%d-%H%M%S")

    with steps.step("preprocess", "synthetic driver-trips data as Parquet"):
        prepared = preprocess(config)
        summary["preprocess"] = prepared["rows"]
        frame = pd.read_parquet(prepared["artifacts"]["training"])

    with steps.step("features", "feast apply + materialize_incremental into the SQLite online store (a Ray task)"):
        summary["features"] = materialize_features(config)

    with steps.step("train", f"DDP on Ray Train, checkpoints to {storage_uri}, MLflow on SQLite"):
        summary["train"] = train(config, storage_uri, prepared, run_stamp, services.mlflow.url)
        if summary["train"]["status"] == "failed":
            raise RuntimeError(f"training failed: {summary['train']}")

    with steps.step("solve", "job shop and vehicle routing with the OR-Tools/PyVRP portfolio, fresh runs"):
        summary["jobshop"] = solve(config, config.scheduling_instance, run_stamp)
        summary["routing"] = solve(config, config.routing_instance, run_stamp)

    canary = f"canary {CANARY} (MLflow registry) at {config.canary_weight:.0%}"
    with steps.step("serve", f"stable {STABLE} (checkpoint bundle) + {canary}"):
        inference = inference_config(config, summary["train"], storage_uri)
        url = start_serving(inference)
        print(f"    {url}/v1/predict", flush=True)

    with steps.step("query", f"{config.num_queries} requests, {config.entity_key_share:.0%} with entity keys only"):
        served = query(config, url, query_instances(config, frame))
        summary["serve"] = {**served, "canary_target": config.canary_weight}

    with steps.step("batch inference", "Ray Data over a Parquet file, compared with the online route"):
        summary["batch"] = batch_predict(config, summary["train"], frame)
        summary["batch"]["matches_online"] = compare_batch_with_online(
            url, inference.models.version_header, summary["batch"]
        )


def run_demo(config: DemoConfig) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # at INFO it logs one line per request
    summary: dict[str, Any] = {"status": "ok"}
    steps = StepLog()
    services = LocalServices(
        config.bucket, config.num_cpus, config.use_gcs_emulator, mlflow_dir=Path(config.output_dir)
    )
    try:
        with services:
            run_steps(config, services, summary, steps)
    except Exception as exc:  # noqa: BLE001 - the demo reports which step it stopped in, then fails
        traceback.print_exc()
        summary["error"] = f"{type(exc).__name__}: {exc}"
        # a replica's or a worker's own traceback is only in Ray's logs (log_to_driver is off)
        summary["ray_logs"] = str(Path(services.ray_temp_dir, "session_latest", "logs"))
    summary["steps_done"] = steps.done
    if not steps.missing():
        print_report(summary)
    problems = failures(summary, steps)
    if problems:
        summary["status"] = "failed"
        summary["problems"] = problems
        print("\nDEMO FAILED:\n" + "\n".join(f"  - {problem}" for problem in problems), flush=True)
    return summary


def failures(summary: dict[str, Any], steps: StepLog) -> list[str]:
    """Why the demo did not show everything it should: steps that did not run, requests that failed."""
    problems = []
    if steps.missing():
        stopped_by = f" (stopped by {summary['error']})" if "error" in summary else ""
        problems.append(f"steps not run: {', '.join(steps.missing())}{stopped_by}")
        if "ray_logs" in summary:
            problems.append(f"Ray's logs (replicas under serve/, workers as worker-*): {summary['ray_logs']}")
    if summary.get("serve", {}).get("failed"):
        problems.append(f"{summary['serve']['failed']} queries failed, e.g. {summary['serve']['failures'][:1]}")
    matches = summary.get("batch", {}).get("matches_online")
    if matches is not None and not matches["equal"]:
        problems.append(f"batch predictions differ from the online ones: {matches}")
    return problems


def report_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    train, served, batch = summary["train"], summary["serve"], summary["batch"]
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(train["metrics"].items()) if k.startswith("val_"))
    rows = [
        ("features", f"materialized {summary['features']['rows']}"),
        ("training", f"{train['status']}: {metrics} (majority-class baseline {train['baseline_accuracy']})"),
    ]
    for name in ("jobshop", "routing"):
        result = summary[name]
        resumed = f", resumed from {result['resumed_from']}" if result["resumed_from"] else ", fresh run"
        rows.append((name, f"{result['problem']}: objective {result['objective']}, gap to best known "
                           f"{result['gap_to_best_known']:.2%}, {result['status']}, feasible {result['feasible']}"
                           f" ({result['run_name']}{resumed})"))
    rows += [
        ("serving", f"{served['answered']}/{served['answered'] + served['failed']} answered "
                    f"({served['answered_by_entity_keys']} from entity keys), latency {served['latency_ms']} ms"),
        ("canary", f"{CANARY} share {served['canary_share']} (target {served['canary_target']}), rollout {served['rollout']['status']}"),
        ("batch", f"{batch['rows']} rows -> {batch['output_uri']}; equal to online: {batch['matches_online']['equal']}"),
    ]  # fmt: skip
    return rows


def print_report(summary: dict[str, Any]) -> None:
    print("\n| step | result |\n|---|---|")
    for name, text in report_rows(summary):
        print(f"| {name} | {text} |")
    plots = [p for name in ("jobshop", "routing") for p in summary[name].get("plots", {}).values()]
    print(
        "\nWhere to look:\n"
        f"  MLflow UI:   .venv/bin/mlflow ui --backend-store-uri sqlite:///{summary['mlflow_store']}"
        " (the demo's server stopped with it)\n"
        f"  Solver PNGs: {', '.join(plots) or 'none'}\n"
        "  On KubeRay:  clusters/rayjob-{preprocess,materialize,train,optimize,batch-predict}.yaml, clusters/rayservice.yaml\n"
        f"  The Ray dashboard at {summary['dashboard_url']} stopped with the demo; `make cluster-up` starts one that stays.\n",
        flush=True,
    )
