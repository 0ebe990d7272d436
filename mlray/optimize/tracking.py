"""MLflow: one run per solve, the incumbent history as a metric series, the PNGs as artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlray.config.sections import MlflowConfig

if TYPE_CHECKING:
    from mlray.optimize.optimizer import OptimizationResult


def log_result(mlflow_config: MlflowConfig, result: OptimizationResult, params: dict[str, object]) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_config.tracking_uri)
    experiment = client.get_experiment_by_name(mlflow_config.experiment)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(mlflow_config.experiment)
    )
    run = client.create_run(experiment_id, run_name=result.run_name, tags={"mlray.job": "optimize"})
    run_id = run.info.run_id
    start_ms = run.info.start_time
    for name, value in params.items():
        client.log_param(run_id, name, str(value)[:500])
    for step, point in enumerate(result.history):
        client.log_metric(
            run_id, "incumbent", point["objective"], timestamp=start_ms + int(point["time"] * 1000), step=step
        )
    for step, point in enumerate(result.bound_history):
        client.log_metric(
            run_id, "bound", point["bound"], timestamp=start_ms + int(point["time"] * 1000), step=step
        )
    finals = {
        "objective": result.objective,
        "best_bound": result.best_bound,
        "gap_to_best_known": result.gap(),
    }
    for name, value in finals.items():
        if value is not None:
            client.log_metric(run_id, name, value)
    client.log_metric(run_id, "feasible", float(result.feasible))
    for path in result.plots.values():
        client.log_artifact(run_id, path, artifact_path="plots")
    client.set_terminated(run_id, status="FINISHED")
    return run_id
