"""MLflow: one run per solve, the incumbent history as a metric series, the PNGs as artifacts."""

from __future__ import annotations

import time
from mlray.config.sections import MlflowConfig
from mlray.optimize.result import OptimizationResult


def log_result(mlflow_config: MlflowConfig, result: OptimizationResult, params: dict[str, object]) -> str:
    import mlflow
    from mlflow.entities import Metric, Param

    from mlray.tracking import experiment_id, log_in_batches

    client = mlflow.MlflowClient(tracking_uri=mlflow_config.tracking_uri)
    run = client.create_run(experiment_id(client, mlflow_config.experiment), run_name=result.run_name,
                            tags={"mlray.job": "optimize"})
    run_id = run.info.run_id
    start_ms, now_ms = run.info.start_time, int(time.time() * 1000)
    metrics = [Metric("incumbent", point["objective"], start_ms + int(point["time"] * 1000), step)
               for step, point in enumerate(result.history)]
    metrics += [Metric("bound", point["bound"], start_ms + int(point["time"] * 1000), step)
                for step, point in enumerate(result.bound_history)]
    finals = {
        "objective": result.objective,
        "best_bound": result.best_bound,
        "gap_to_best_known": result.gap(),
        "feasible": float(result.feasible),
    }
    metrics += [Metric(name, value, now_ms, 0) for name, value in finals.items() if value is not None]
    log_in_batches(client, run_id, params=[Param(name, str(value)[:500]) for name, value in params.items()],
                   metrics=metrics)
    for path in result.plots.values():
        client.log_artifact(run_id, path, artifact_path="plots")
    client.set_terminated(run_id, status="FINISHED")
    return run_id
