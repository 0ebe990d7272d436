"""Training on a real Ray cluster: DDP, gs:// checkpoints on the emulator, MLflow, failures, timeouts."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.waiting import wait_for
import torch
from mlflow.tracking import MlflowClient

from mlray.models import load_bundle
from mlray.ray_private import checkpoint_manager_snapshot_filename
from mlray.serve.prediction.versions import load_model_version
from mlray.storage import Storage
from mlray.train.checkpoint import META_FILE, STATE_FILE, epoch_of
from mlray.train.runner import run_training
from mlray.train.callbacks import LoopStart, TrainingCallback
from tests.train.conftest import training_config

pytestmark = pytest.mark.slow

POLL_S = 0.1


def checkpoint_names(storage: Storage, run_name: str) -> list[str]:
    return [n for n in storage.child(run_name).list() if epoch_of(n) is not None]


def history(mlflow_uri: str, run_id: str, key: str) -> list[float]:
    entries = MlflowClient(mlflow_uri).get_metric_history(run_id, key)
    return [m.value for m in sorted(entries, key=lambda m: (m.timestamp, m.step))]


def registered_checkpoints(config) -> str:
    """The Ray Train controller's checkpoint snapshot of the run ('' before it exists)."""
    snapshot = checkpoint_manager_snapshot_filename()
    run = Storage(config.storage.uri).child(config.run_name)
    return run.read_text(snapshot) if run.exists(snapshot) else ""


def epochs_logged(mlflow_uri: str) -> int:
    """Epochs rank 0 has logged to any run of this tracking store (0 before the store exists)."""
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return max((len(client.get_metric_history(r.info.run_id, "train_loss")) for r in runs), default=0)


class WorkerSignaller(threading.Thread):
    """Sends ``signum`` to one training worker once ``ready()`` holds."""

    def __init__(self, dashboard_url: str, signum: int, ready):
        super().__init__(daemon=True)
        self.dashboard_url, self.signum, self.ready = dashboard_url, signum, ready
        self.signalled: list[int] = []
        self.errors: list[BaseException] = []
        self.start()

    def both_workers(self):
        from ray.util.state import list_actors

        alive = list_actors(address=self.dashboard_url, detail=True,
                            filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])
        return alive if len(alive) == 2 else None

    def run(self) -> None:
        try:
            # Look the workers up first: the state API is slow, the signal must not be.
            workers = wait_for(self.both_workers, 120, "two training workers", POLL_S)
            wait_for(self.ready, 120, "the moment to signal", POLL_S)
            pid = max(w.pid for w in workers)
            os.kill(pid, self.signum)
            self.signalled.append(pid)
        except BaseException as exc:  # surfaced by join()
            self.errors.append(exc)

    def join(self, timeout: float | None = 5) -> None:
        super().join(timeout)
        assert self.signalled, f"no worker was signalled: {self.errors}"


@dataclass
class RecordReports(TrainingCallback):
    """A callback on every rank: each appends the epochs it reported to its own file in ``folder``."""

    folder: str
    rank: int = -1

    def on_start(self, start: LoopStart) -> None:
        self.rank = start.rank

    def after_report(self, metrics) -> None:
        with (Path(self.folder) / f"rank{self.rank}").open("a") as record:
            record.write(f"{metrics['epoch']}\n")


@pytest.fixture(scope="module")
def gcs_run(ray_cluster, gcs_emulator, small_data_dir, tmp_path_factory):
    """One 2-worker DDP run to gs:// on the emulator, shared by the assertions below.

    Every rank runs the callback ``RecordReports``, whose files are in ``reports``.
    """
    from tests.conftest import TEST_BUCKET

    tmp = tmp_path_factory.mktemp("gcs_run")
    uri = f"gs://{TEST_BUCKET}/train-{os.getpid()}"
    mlflow_uri = f"sqlite:///{tmp}/mlflow.db"
    config = training_config(small_data_dir, uri, mlflow_uri, run_name="ddp-gcs",
                             training={"num_epochs": 3, "checkpointing": {"frequency": 1, "keep_best": 2}})
    reports = tmp / "reports"
    reports.mkdir()
    return config, run_training(config, callbacks=[RecordReports(str(reports))]), mlflow_uri, reports


def test_two_worker_ddp_run_checkpoints_to_gcs(gcs_run):
    config, summary, _, _ = gcs_run
    assert summary["status"] == "completed", summary
    assert summary["epochs_completed"] == 3
    storage = Storage(config.storage.uri)
    names = checkpoint_names(storage, "ddp-gcs")
    # the best two plus the latest (which Ray never deletes)
    assert 2 <= len(names) <= 3 and max(map(epoch_of, names)) == 3
    latest = storage.child("ddp-gcs", max(names, key=epoch_of))
    assert {STATE_FILE, META_FILE, "rng_rank0.pt", "rng_rank1.pt"} <= set(latest.list())
    assert summary["checkpoint_uri"].startswith("gs://")


def test_every_rank_reports_to_the_callbacks(gcs_run):
    _, summary, _, reports = gcs_run
    assert summary["status"] == "completed", summary
    recorded = {path.name: path.read_text().split() for path in reports.iterdir()}
    assert recorded == {"rank0": ["1", "2", "3"], "rank1": ["1", "2", "3"]}


def test_mlflow_run_holds_params_epoch_metrics_and_a_loadable_model(gcs_run):
    config, summary, mlflow_uri, _ = gcs_run
    client = MlflowClient(mlflow_uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["training.num_workers"] == "2"
    assert run.data.params["storage.uri"] == config.storage.uri
    assert run.data.tags["mlray.run_name"] == "ddp-gcs" and run.data.tags["git.commit"]
    assert "ray.job_id" in run.data.tags and "system.torch" in run.data.tags
    for key in ("train_loss", "val_loss", "val_accuracy", "val_f1"):
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, key)) == [1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"learning_curves.png", "config"} <= artifacts

    features = np.random.default_rng(0).uniform(0, 1, (7, 4)).astype(np.float32)
    logged = load_model_version("logged", summary["mlflow_model_uri"],
                                mlflow_tracking_uri=config.mlflow.tracking_uri).model
    bundle_model, spec = load_bundle(summary["model_uri"])
    assert summary["model_uri"] == Storage(config.storage.uri).url("ddp-gcs", "model")
    assert spec.feature_names == ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
    with torch.no_grad():
        expected = bundle_model(torch.from_numpy(features))
        assert torch.allclose(logged(torch.from_numpy(features)), expected, atol=1e-5)
    assert expected.shape == (7, 2)
    # Serving and batch inference load the logged model by URI and read the input columns from its signature.
    served = load_model_version("mlflow", summary["mlflow_model_uri"], mlflow_tracking_uri=config.mlflow.tracking_uri)
    assert served.feature_names == spec.feature_names
    assert torch.allclose(served.model(torch.from_numpy(features)), expected, atol=1e-5)


def test_corrupt_latest_gcs_checkpoint_is_skipped_on_resume(gcs_run):
    """Runs after the two above: it damages their run's latest checkpoint and resumes it."""
    config, summary, mlflow_uri, _ = gcs_run
    storage = Storage(config.storage.uri).child("ddp-gcs")
    latest = max(checkpoint_names(Storage(config.storage.uri), "ddp-gcs"), key=epoch_of)
    state = storage.read_bytes(f"{latest}/{STATE_FILE}")
    storage.write_bytes(f"{latest}/{STATE_FILE}", state[: len(state) // 3])  # a half-written upload

    more = config.model_copy(update={"training": config.training.model_copy(update={"num_epochs": 4})})
    resumed = run_training(more)
    assert resumed["status"] == "completed", resumed
    assert resumed["mlflow_run_id"] == summary["mlflow_run_id"]
    # [initial run, resumed run, and more if a worker group restarted under load]
    skipped = history(mlflow_uri, resumed["mlflow_run_id"], "skipped_checkpoints")
    assert skipped[:2] == [0, 1], skipped
    # the next newest kept checkpoint is epoch 1 or 2, and training continued after it
    starts = history(mlflow_uri, resumed["mlflow_run_id"], "start_epoch")
    assert starts[0] == 1 and 2 <= starts[1] <= 3, starts
    assert resumed["epochs_completed"] == 4


def test_sigkilled_worker_restarts_from_latest_checkpoint(ray_cluster, small_data_dir, tmp_path):
    frequency, num_epochs = 1, 5
    config = training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             run_name="sigkill",
                             training={"num_epochs": num_epochs, "batch_size": 16,
                                       "checkpointing": {"frequency": frequency, "keep_best": 1}})
    # Kill once Ray's controller has registered epoch 1's checkpoint (its snapshot names it): a checkpoint
    # folder alone may still be uploading, and Ray rightly ignores one that some rank never finished.
    killer = WorkerSignaller(ray_cluster.dashboard_url, signal.SIGKILL,
                             ready=lambda: "epoch_00001" in registered_checkpoints(config))
    summary = run_training(config)
    killer.join()
    assert summary["status"] == "completed", summary
    assert summary["epochs_completed"] == num_epochs
    mlflow_uri = config.mlflow.tracking_uri
    starts = history(mlflow_uri, summary["mlflow_run_id"], "start_epoch")
    assert len(starts) >= 2 and starts[0] == 1 and starts[-1] > 1, starts  # restarted, not from zero
    epochs_run = len(history(mlflow_uri, summary["mlflow_run_id"], "train_loss"))
    assert num_epochs <= epochs_run <= num_epochs + frequency


@pytest.mark.parametrize(
    ("timeouts", "status"),
    [
        ({"total_runtime": 0.5}, "timeout_total_runtime"),
        ({"iteration": 0.05}, "timeout_iteration"),
        ({"no_improvement": 0.001, "improvement": {"threshold": 1e6}}, "timeout_no_improvement"),
    ],
    ids=["total_runtime", "iteration", "no_improvement"],
)
def test_timeout_ends_run_with_checkpoint_and_status(ray_cluster, small_data_dir, tmp_path, timeouts, status,
                                                     capsys):
    config = training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             run_name="timeout",
                             training={"num_workers": 1, "num_epochs": 50, "batch_size": 8, "stop_check_batches": 1,
                                       "checkpointing": {"enabled": False}},
                             timeouts={"total_runtime": None, "iteration": None, "no_improvement": None, **timeouts},
                             mlflow={"enabled": False})
    summary = run_training(config)
    assert summary["status"] == status, summary
    assert summary["epochs_completed"] < 50
    # The driver's progress ends on the epochs rank 0 finished (stderr is no terminal here: plain lines).
    last_progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train timeout: ")][-1]
    assert f"{summary['epochs_completed']}/50 epochs" in last_progress, last_progress
    names = checkpoint_names(Storage(config.storage.uri), "timeout")
    assert len(names) == 1  # periodic checkpoints are off: this one was written when the limit fired
    assert epoch_of(names[0]) == summary["epochs_completed"]
    assert Path(summary["model_uri"], "model.pt").is_file()
