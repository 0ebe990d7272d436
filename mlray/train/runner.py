"""Driver of a training run: data, MLflow, Ray Train's TorchTrainer, export of the best model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mlray.cluster import init_ray
from mlray.config.train import TrainJobConfig, TrainingSection
from mlray.models import ModelSpec, save_bundle
from mlray.models.mlflow_bundle import log_bundle_model
from mlray.process_env import TRAIN_JOB, process_env
from mlray.process_env import apply as apply_env
from mlray.storage import Storage
from mlray.train.callbacks import TrainingCallback
from mlray.train.checkpoint import first_valid, sibling_checkpoints, tidy_run_storage
from mlray.train.loop import LoopSettings, train_loop
from mlray.train.metrics import metric_key, resolve_metrics
from mlray.train.prepare import PreparedData, load_training_data, model_spec, split
from mlray.train.stopping import StopReason
from mlray.train import tracking

log = logging.getLogger(__name__)

BUNDLE_DIR = "model"


@dataclass
class PreparedRun:
    data: PreparedData
    spec: ModelSpec


def prepare_run(config: TrainJobConfig) -> PreparedRun:
    """Everything that can be wrong with the use case fails here, before Ray starts."""
    resolve_metrics(config.training.metrics)
    data = split(load_training_data(config), config.training.validation_fraction, config.training.seed,
                 config.model.task)
    spec = model_spec(config, data)
    spec.build()  # the factory accepts its kwargs
    return PreparedRun(data, spec)


def set_ray_train_env(config: TrainJobConfig) -> None:
    """The training job's process env (``mlray.process_env``: Ray Train's settings that only exist as
    environment variables, among others) in this driver's environment, where the trainer reads them and
    hands them to its controller. The config value wins over a variable already set."""
    replaced = apply_env(process_env(TRAIN_JOB, config))
    if replaced:
        log.info("process env from the config replaced %s", replaced)


def train_worker(loop_config: dict[str, Any]) -> None:
    """What each Ray Train worker runs."""
    import ray

    from mlray.train.control import EpochProgressReporter
    from mlray.train.session import RayTrainSession

    settings: LoopSettings = loop_config["settings"]
    logging.basicConfig(level=settings.config.monitoring.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mlray").setLevel(settings.config.monitoring.log_level)
    spot = settings.config.spot
    session = RayTrainSession(loop_config["control"], watch_preemption=spot.enabled, grace_period=spot.grace_period,
                              remote_storage=Storage(settings.config.storage.uri).is_remote)
    callbacks: list[TrainingCallback] = [*loop_config["callbacks"]]
    if session.rank == 0:  # the driver's progress bar and MLflow: rank 0's epochs
        callbacks.append(EpochProgressReporter(loop_config["control"], settings.config.training.monitor.metric))
        if loop_config.get("mlflow_run_id"):
            callbacks.append(tracking.EpochLogger(loop_config["tracking_uri"], loop_config["mlflow_run_id"]))
    try:
        train_loop(settings, ray.get(loop_config["data"]), session, callbacks)
    finally:
        session.close()  # SIGTERM after training is Ray's again


def run_training(config: TrainJobConfig, callbacks: Sequence[TrainingCallback] = (),
                 on_forced_exit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``config`` on Ray Train; the summary.

    ``callbacks`` (``mlray.train.callbacks``) go to every worker, so they must pickle; each rank gets
    its own copy. ``on_forced_exit`` gets the summary of a run whose workers did not stop within the
    grace period after SIGTERM, just before this process exits (``jobs.train`` prints it).
    """
    started = time.time()
    try:
        prepared = prepare_run(config)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return {"status": "failed", "error": f"use case ({config.data.loader}, {config.model.factory}): {exc}"}

    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from mlray.train.control import follow_epochs, start_run_control, stop_on_sigterm

    storage = Storage(config.storage.uri)
    run_storage = storage.child(config.run_name)
    # What killed uploads of earlier attempts left behind.
    tidy_run_storage(run_storage, config.storage.stale_temp_after_s)
    set_ray_train_env(config)
    init_ray(config.ray)
    tracking_uri = tracking.absolute_tracking_uri(config.mlflow.tracking_uri)
    run_id = None
    if config.mlflow.enabled:
        tags = {
            tracking.RUN_NAME_TAG: config.run_name,
            "ray.job_id": ray.get_runtime_context().get_job_id(),
            "git.commit": tracking.git_commit(),
            **prepared.data.tags,
        }
        run_id = tracking.open_run(config.mlflow, run_storage, config.run_name, config.model_dump(mode="json"), tags)

    training = config.training
    control = start_run_control()
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={
            "settings": LoopSettings(config, prepared.spec, run_started=started),
            "data": ray.put(prepared.data),
            "control": control,
            "mlflow_run_id": run_id,
            "tracking_uri": tracking_uri,
            "callbacks": list(callbacks),
        },
        torch_config=TorchConfig(backend="nccl" if training.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=scaling_workers(training), use_gpu=training.use_gpu,
                                     elastic_resize_monitor_interval_s=training.elastic_resize_interval_s),
        run_config=RunConfig(
            name=config.run_name,
            storage_path=storage.path(),
            storage_filesystem=storage.pyarrow_fs,
            failure_config=FailureConfig(max_failures=training.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=training.checkpointing.keep_best,
                checkpoint_score_attribute=training.monitor.metric,
                checkpoint_score_order=training.monitor.mode,
            ),
        ),
    )

    def forced_exit() -> None:
        if on_forced_exit is not None:
            on_forced_exit({"job": "train", "status": StopReason.PREEMPTED.value, "clean_stop": False,
                            "run_name": config.run_name})

    with stop_on_sigterm(control, config.spot.grace_period, forced_exit) as signals:
        try:
            with follow_epochs(control, f"train {config.run_name}", training.num_epochs):
                result = trainer.fit()
        except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors; the summary names them
            log.exception("training failed")
            if run_id:
                tracking.MlflowClient(tracking_uri).set_terminated(run_id, status="FAILED")
            return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "run_name": config.run_name}
    ray.kill(control)

    last = dict(result.metrics or {})
    status = str(last.get("status", StopReason.COMPLETED.value))
    summary: dict[str, Any] = {
        "status": status,
        "run_name": config.run_name,
        "epochs_completed": int(last.get("epoch", 0)),
        "metrics": {k: v for k, v in last.items() if isinstance(v, (int, float)) and k != "epoch"},
        "checkpoint_uri": _checkpoint_uri(storage, result.checkpoint),
        "storage_uri": run_storage.url(),
        "mlflow_run_id": run_id,
    }
    if signals.received_at is not None:
        summary["sigterm_to_stop_s"] = round(time.time() - signals.received_at, 2)
    if status == StopReason.PREEMPTED.value:
        if run_id:
            tracking.MlflowClient(tracking_uri).set_terminated(run_id, status="KILLED")
        return summary
    summary.update(export_models(config, prepared, result.checkpoint, run_storage, tracking_uri, run_id, status))
    tidy_run_storage(run_storage, config.storage.stale_temp_after_s)
    return summary


def scaling_workers(training: TrainingSection) -> int | tuple[int, int]:
    """Ray Train's ``num_workers``: a (min, max) pair turns on its elastic scaling policy."""
    low, high = training.worker_range
    return high if low == high else (low, high)


def _checkpoint_uri(storage: Storage, checkpoint: Any) -> str | None:
    if checkpoint is None:
        return None
    return f"gs://{checkpoint.path}" if storage.is_remote else checkpoint.path


def load_models(spec: ModelSpec, checkpoint: Any) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """(best model, final model, state) from the newest loadable checkpoint of the run."""
    loaded = first_valid(sibling_checkpoints(checkpoint), rank=0)
    if loaded is None:
        raise RuntimeError("no loadable checkpoint: nothing to export")
    final, best = spec.build(), spec.build()
    final.load_state_dict(loaded.state["model"])
    best.load_state_dict(loaded.state["best_model"] or loaded.state["model"])
    return best.eval(), final.eval(), loaded.state


def export_models(config: TrainJobConfig, prepared: PreparedRun, checkpoint: Any, run_storage: Storage,
                  tracking_uri: str, run_id: str | None, status: str) -> dict[str, Any]:
    """The best model as a bundle (serving, batch inference), logged and registered in MLflow as one too."""
    best, final, state = load_models(prepared.spec, checkpoint)
    spec = ModelSpec(**{**prepared.spec.__dict__, "metadata": {
        **prepared.spec.metadata, "best_epoch": state["best_epoch"], "best_metric": state["best_metric"],
        "monitor": config.training.monitor.metric}})
    exported: dict[str, Any] = {
        "model_uri": save_bundle(best, spec, run_storage, BUNDLE_DIR),
        "best_epoch": state["best_epoch"],
        "best_metric": state["best_metric"],
    }
    if run_id is None:
        return exported
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri)
    # Named columns in the signature tell a reader of the registry which feature is which.
    example = pd.DataFrame(prepared.data.x_val[:5], columns=list(prepared.spec.feature_names))
    with torch.no_grad():
        signature = infer_signature(example, best(torch.from_numpy(example.to_numpy())).numpy())
    client = tracking.MlflowClient(tracking_uri)
    with mlflow.start_run(run_id=run_id):
        # Bundle files, no pickle: serving and batch load them weights-only (mlray.models.mlflow_bundle).
        info = log_bundle_model(best, spec, "model", signature=signature,
                                registered_model_name=config.model.registered_name)
        if state["best_epoch"] != state["epoch"]:  # identical otherwise: skip the second export
            log_bundle_model(final, spec, "final_model", signature=signature)
        metric_keys = [metric_key(m) for m in config.training.metrics]
        mlflow.log_figure(tracking.learning_curves(client, run_id, metric_keys), "learning_curves.png")
        mlflow.set_tags({"mlray.status": status, "mlray.model_uri": exported["model_uri"]})
    exported["mlflow_model_uri"] = info.model_uri
    if info.registered_model_version is not None:
        exported["registered_model"] = f"models:/{config.model.registered_name}/{info.registered_model_version}"
    return exported
