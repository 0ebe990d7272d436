"""MLflow tracking of a training run: one MLflow run per mlray run, continued on resume.

The driver opens (or reopens) the run and logs params, tags, system info and
the config; rank 0 logs every epoch's metrics; the driver finally logs the
models, learning curves and the end status.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from collections.abc import Mapping
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from mlray.config.sections import MlflowConfig
from mlray.storage import Storage
from mlray.tracking import experiment_id, log_in_batches
from mlray.train.callbacks import LoopStart, TrainingCallback

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id"
RUN_NAME_TAG = "mlray.run_name"
CURVE_KEYS = ("train_loss", "val_loss")


def absolute_tracking_uri(uri: str) -> str:
    """``sqlite:///runs/mlflow.db`` relative to this process, so Ray workers elsewhere hit the same file."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = os.path.abspath(uri[len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return prefix + path
    return uri


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = str(value)[:6000]
    return flat


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def system_info() -> dict[str, str]:
    import ray
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "mlflow": mlflow.__version__,
        "cuda": str(torch.cuda.is_available()),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def open_run(settings: MlflowConfig, run_storage: Storage, run_name: str, params: Mapping[str, Any],
             tags: Mapping[str, str]) -> str:
    """The MLflow run of this mlray run: reopened when the run's storage names one, else created."""
    tracking_uri = absolute_tracking_uri(settings.tracking_uri)
    client = MlflowClient(tracking_uri)
    run_id = _previous_run_id(client, run_storage)
    if run_id is None:
        experiment = experiment_id(client, settings.experiment)
        run_id = client.create_run(experiment, run_name=run_name, tags={RUN_NAME_TAG: run_name}).info.run_id
        run_storage.write_text(RUN_ID_FILE, run_id)
        log.info("mlflow: new run %s", run_id)
    else:
        client.update_run(run_id, status="RUNNING")
        log.info("mlflow: continuing run %s", run_id)
    log_params_once(client, run_id, flatten(params))
    all_tags = {**tags, **{f"system.{k}": v for k, v in system_info().items()}}
    log_in_batches(client, run_id,
                   tags=[mlflow.entities.RunTag(key, str(value)) for key, value in all_tags.items()])
    client.log_dict(run_id, dict(params), "config/train.yaml")
    return run_id


def _previous_run_id(client: MlflowClient, run_storage: Storage) -> str | None:
    if not run_storage.exists(RUN_ID_FILE):
        return None
    run_id = run_storage.read_text(RUN_ID_FILE).strip()
    try:
        client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        log.warning("mlflow run %s named by %s is not in this tracking store: starting a new one", run_id,
                    run_storage.url(RUN_ID_FILE))
        return None
    return run_id


def log_params_once(client: MlflowClient, run_id: str, params: dict[str, str]) -> None:
    """MLflow params are immutable: a resumed run with changed settings records them as tags."""
    logged = client.get_run(run_id).data.params
    new = {k: v for k, v in params.items() if k not in logged}
    changed = {key: value for key, value in params.items() if key in logged and logged[key] != value}
    log_in_batches(client, run_id,
                   tags=[mlflow.entities.RunTag(f"resumed.{key}", value) for key, value in changed.items()])
    log_in_batches(client, run_id, params=[mlflow.entities.Param(key, value) for key, value in new.items()])


class EpochLogger(TrainingCallback):
    """Rank 0's callback: each epoch's metrics, written straight into the driver's run."""

    rank_zero_only = True

    def __init__(self, tracking_uri: str, run_id: str, prefix: str = ""):
        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id
        self.prefix = prefix

    def on_start(self, start: LoopStart) -> None:
        """Each (re)start of the workers: where it resumed, how many damaged checkpoints it skipped (step 0)."""
        self.after_epoch({"start_epoch": start.start_epoch, "skipped_checkpoints": start.skipped_checkpoints})

    def after_epoch(self, metrics: dict[str, Any]) -> None:
        import time

        step = int(metrics.get("epoch", 0))
        now = int(time.time() * 1000)
        batch = [
            Metric(f"{self.prefix}{key}", float(value), now, step)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and key != "epoch"
        ]
        try:
            self.client.log_batch(self.run_id, metrics=batch)
        except mlflow.exceptions.MlflowException as exc:  # tracking trouble must not stop training
            log.warning("mlflow: epoch %d metrics not logged: %s", step, exc)


def learning_curves(client: MlflowClient, run_id: str, metric_keys: list[str]) -> Any:
    """A figure of loss and validation metrics per epoch, from what the run logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, keys in ((loss_axes, CURVE_KEYS), (metric_axes, metric_keys)):
        for key in keys:
            history = _last_value_per_step(client.get_metric_history(run_id, key))
            if history:
                axes.plot(list(history), list(history.values()), marker="o", label=key)
        axes.set_xlabel("epoch")
        axes.legend()
    loss_axes.set_title("loss")
    metric_axes.set_title("validation metrics")
    figure.tight_layout()
    return figure


def _last_value_per_step(history: list[Metric]) -> dict[int, float]:
    """An epoch rerun after a restart was logged twice; the later value is the one the run kept."""
    values: dict[int, float] = {}
    for metric in sorted(history, key=lambda m: m.timestamp):
        values[metric.step] = metric.value
    return dict(sorted(values.items()))
