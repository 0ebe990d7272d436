"""Hyperparameter search with Ray Tune and ASHA over the same training loop.

Each trial is one process running ``train_loop`` with a ``TuneSession``:
metrics every epoch (ASHA decides on them), checkpoints as configured, and an
MLflow child run under one parent run for the search.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from mlray.cluster import init_ray
from mlray.config.loader import ConfigError
from mlray.config.train import TrainJobConfig
from mlray.config.tune import SearchDimension, TuneJobConfig, trial_config
from mlray.storage import Storage
from mlray.train import tracking
from mlray.train.loop import LoopSettings, train_loop
from mlray.train.prepare import PreparedData, model_spec
from mlray.train.runner import prepare_run
from mlray.train.session import TuneSession


def search_space(dimensions: dict[str, SearchDimension]) -> dict[str, Any]:
    from ray import tune

    samplers = {
        "uniform": lambda d: tune.uniform(d.low, d.high),
        "loguniform": lambda d: tune.loguniform(d.low, d.high),
        "randint": lambda d: tune.randint(int(d.low), int(d.high)),
        "choice": lambda d: tune.choice(d.values),
    }
    return {key: samplers[d.type](d) for key, d in dimensions.items()}


def tune_trial(params: dict[str, Any], base: TrainJobConfig, data: PreparedData, tracking_uri: str,
               experiment_id: str | None, parent_run_id: str | None) -> None:
    """One trial: the base training config with this trial's values, trained in this process."""
    import ray.tune

    config = trial_config(base, params)
    settings = LoopSettings(config, model_spec(config, data), run_started=time.time())
    callbacks: list[tracking.EpochLogger] = []
    client, run_id = None, None
    if parent_run_id is not None and experiment_id is not None:
        client = tracking.MlflowClient(tracking_uri)
        trial_name = ray.tune.get_context().get_trial_name()
        run_id = client.create_run(experiment_id, run_name=trial_name,
                                   tags={"mlflow.parentRunId": parent_run_id}).info.run_id
        tracking.log_params_once(client, run_id, tracking.flatten(params))
        callbacks.append(tracking.EpochLogger(tracking_uri, run_id))
    status = "FAILED"
    try:
        train_loop(settings, data, TuneSession(torch.device("cpu")), callbacks)
        status = "FINISHED"
    except SystemExit:  # how Tune ends a trial its scheduler stopped, inside report()
        status = "KILLED"
        raise
    finally:
        if client is not None and run_id is not None:
            client.set_terminated(run_id, status=status)


def run_tuning(config: TuneJobConfig) -> dict[str, Any]:
    try:
        base = config.base_training_config()
        prepared = prepare_run(base)
    except (ConfigError, OSError, ValueError, TypeError) as exc:
        return {"status": "failed", "error": str(exc)}

    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    init_ray(config.ray)
    storage = Storage(config.storage.uri)
    tracking_uri = tracking.absolute_tracking_uri(config.mlflow.tracking_uri)
    experiment_id = parent_run_id = None
    if config.mlflow.enabled:
        client = tracking.MlflowClient(tracking_uri)
        experiment_id = tracking.experiment_id(client, config.mlflow.experiment)
        parent_run_id = client.create_run(experiment_id, run_name=config.run_name,
                                          tags={tracking.RUN_NAME_TAG: config.run_name,
                                                "git.commit": tracking.git_commit()}).info.run_id
        tracking.log_params_once(client, parent_run_id, tracking.flatten(config.model_dump(mode="json")))

    monitor = base.training.monitor
    trainable = tune.with_resources(
        tune.with_parameters(tune_trial, base=base, data=prepared.data, tracking_uri=tracking_uri,
                             experiment_id=experiment_id, parent_run_id=parent_run_id),
        {"cpu": config.cpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=search_space(config.search_space),
        tune_config=tune.TuneConfig(
            metric=monitor.metric,
            mode=monitor.mode,
            num_samples=config.num_samples,
            max_concurrent_trials=config.max_concurrent_trials,
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=base.training.num_epochs,
                                    grace_period=config.scheduler.grace_period,
                                    reduction_factor=config.scheduler.reduction_factor),
        ),
        run_config=tune.RunConfig(name=config.run_name, storage_path=storage.path(),
                                  storage_filesystem=storage.pyarrow_fs),
    )
    results = tuner.fit()
    best = results.get_best_result()
    trials = [
        {"config": r.config, "epochs": int((r.metrics or {}).get("epoch", 0)),
         monitor.metric: (r.metrics or {}).get(monitor.metric), "error": str(r.error) if r.error else None}
        for r in results
    ]
    best_checkpoint = best.checkpoint.path if best.checkpoint else None
    summary = {
        "status": "completed" if not results.errors else "failed",
        "trials": trials,
        "best_config": best.config,
        "best_metrics": {k: v for k, v in (best.metrics or {}).items() if isinstance(v, (int, float))},
        "best_checkpoint_uri": (f"gs://{best_checkpoint}" if storage.is_remote and best_checkpoint
                                else best_checkpoint),
        "mlflow_run_id": parent_run_id,
    }
    if parent_run_id is not None:
        client = tracking.MlflowClient(tracking_uri)
        # Trials ASHA stopped never returned to close their runs.
        for child in client.search_runs([experiment_id], filter_string=(
                f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'")):
            client.set_terminated(child.info.run_id, status="KILLED")
        for key, value in best.config.items():
            client.set_tag(parent_run_id, f"best.{key}", str(value))
        client.log_metric(parent_run_id, f"best_{monitor.metric}", float(best.metrics[monitor.metric]))
        client.set_terminated(parent_run_id, status="FINISHED" if summary["status"] == "completed" else "FAILED")
    return summary
