"""The platform end to end on one machine: preprocess -> train -> solve -> serve -> query.

Each step calls the same library function as its own job (``jobs.preprocess``,
``jobs.train``, ``jobs.optimize``, ``serve run``), with the configs in
``configs/`` plus the demo's overrides, on a local Ray cluster and a local GCS
emulator that ``LocalServices`` starts and always stops.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from mlray.config.demo import DemoConfig
from mlray.config.inference import InferenceConfig
from mlray.config.loader import load_config
from mlray.config.or_tools import OrToolsJobConfig
from mlray.config.preprocessing import PreprocessingConfig
from mlray.config.training import TrainingJobConfig
from mlray.demo.services import LocalServices
from mlray.storage.emulator import free_port

log = logging.getLogger(__name__)
APP_NAME = "mlray-demo"


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def preprocess(config: DemoConfig) -> dict[str, Any]:
    from mlray.train.preprocess import run_preprocessing

    return run_preprocessing(load_config(PreprocessingConfig, config.preprocessing_config))


def train(config: DemoConfig, storage_uri: str) -> dict[str, Any]:
    from mlray.train import run_training

    overrides = [*config.training_overrides, f"storage.uri={storage_uri}"]
    return run_training(load_config(TrainingJobConfig, config.training_config, overrides))


def solve(config: DemoConfig, instance: str) -> dict[str, Any] | None:
    from mlray.optimize import read_problem
    from mlray.optimize.optimizer import optimizer_for

    if not Path(instance).exists():
        print(f"    {instance} not found (../shared absent): solve skipped")
        return None
    solver_config = load_config(
        OrToolsJobConfig, config.or_tools_config, [
            f"solver.time_limit={config.solve_time_limit}",
            "mlflow.enabled=false",
            f"run_name=demo-{Path(instance).stem}",
        ],
    )
    problem = read_problem(instance)
    return optimizer_for(problem, solver_config).parallel_solve(problem).summary()


def serve_and_query(config: DemoConfig, model_uri: str, queries: pd.DataFrame) -> dict[str, Any]:
    import httpx
    from ray import serve

    from mlray.serve.app import build_application

    overrides = [
        f"models.versions.v1={model_uri}",
        f"models.versions.v2={model_uri}",
        "models.stable=v1",
        "rollout.canary=v2",
        f"rollout.canary_weight={config.canary_weight}",
    ]
    inference = load_config(InferenceConfig, config.inference_config, overrides)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_application(inference), name=APP_NAME, route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    versions: collections.Counter[str] = collections.Counter()
    failures = 0
    features = queries[["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]].to_dict("records")
    with httpx.Client(base_url=url, timeout=30) as client:
        for row in features[: config.num_queries]:
            response = client.post("/v1/predict", json={"instances": [row]})
            if response.status_code == 200:
                versions[response.json()["model_version"]] += 1
            else:
                failures += 1
    answered = sum(versions.values())
    return {
        "url": url,
        "answered": answered,
        "failed": failures,
        "versions": dict(versions),
        "canary_share": round(versions.get("v2", 0) / answered, 3) if answered else None,
    }


def run_demo(config: DemoConfig) -> dict[str, Any]:
    summary: dict[str, Any] = {"status": "ok"}
    with LocalServices(bucket=config.bucket, num_cpus=config.num_cpus, use_gcs_emulator=config.use_gcs_emulator) as services:
        print(f"Ray dashboard: {services.dashboard_url}", flush=True)
        storage_uri = f"gs://{config.bucket}/train" if config.use_gcs_emulator else "runs/demo/storage"

        step("1/4 preprocess: synthetic driver-trips data as Parquet")
        prepared = preprocess(config)
        summary["preprocess"] = prepared["rows"]

        step(f"2/4 train: DDP on Ray Train, checkpoints to {storage_uri}, MLflow on SQLite")
        trained = train(config, storage_uri)
        summary["train"] = {k: trained.get(k) for k in ("status", "metrics", "model_uri", "best_epoch")}

        step("3/4 solve: job shop and vehicle routing with the OR-Tools/PyVRP portfolio")
        summary["jobshop"] = solve(config, config.scheduling_instance)
        summary["routing"] = solve(config, config.routing_instance)

        step(f"4/4 serve: stable v1 + canary v2 at {config.canary_weight:.0%}, then {config.num_queries} queries")
        queries = pd.read_parquet(prepared["artifacts"]["training"])
        summary["serve"] = serve_and_query(config, trained["model_uri"], queries)
    print_report(summary)
    if summary["train"]["status"] == "failed" or summary["serve"]["failed"]:
        summary["status"] = "failed"
    return summary


def print_report(summary: dict[str, Any]) -> None:
    train, serve_result = summary["train"], summary["serve"]
    rows = [
        ("training", f"{train['status']}, metrics {train['metrics']}"),
        ("model", str(train["model_uri"])),
    ]
    for name in ("jobshop", "routing"):
        result = summary.get(name)
        if result:
            rows.append((name, f"{result['problem']}: objective {result['objective']}, gap to best known "
                               f"{result['gap_to_best_known']}, feasible {result['feasible']}"))
    rows.append(("serving", f"{serve_result['answered']} answered, {serve_result['failed']} failed, "
                            f"canary share {serve_result['canary_share']}"))
    print("\n| step | result |\n|---|---|")
    for name, text in rows:
        print(f"| {name} | {text} |")
    print(
        "\nWhere to look:\n"
        "  MLflow UI:   .venv/bin/mlflow ui --backend-store-uri sqlite:///runs/demo/mlflow.db\n"
        "  Solver PNGs: " + ", ".join(
            p for name in ("jobshop", "routing") for p in (summary.get(name) or {}).get("plots", {}).values()
        ) + "\n"
        "  On KubeRay:  clusters/rayjob-train.yaml, clusters/rayjob-optimize.yaml, clusters/rayservice.yaml\n",
        flush=True,
    )
