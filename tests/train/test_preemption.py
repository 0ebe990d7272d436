"""SIGTERM to a running training job (spot notice): checkpoint, clean stop, resume in the same MLflow run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from mlray.entrypoint import EXIT_PREEMPTED
from mlray.storage import Storage
from mlray.train.runner import run_training
from tests.train.conftest import training_config
from tests.train.test_ray_training import WorkerSignaller, checkpoint_names, epochs_logged, history, wait_for

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_to_the_job_checkpoints_then_resumes_in_the_same_mlflow_run(ray_cluster, small_data_dir, tmp_path):
    config = training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             run_name="spot",
                             training={"num_epochs": 40, "batch_size": 16,
                                       "checkpointing": {"frequency": 1000, "keep_best": 1}},
                             spot={"grace_period": 90})
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.gcs_address, "RAY_AUTH_MODE": "token"}
    job = subprocess.Popen([sys.executable, "-m", "jobs.train", "--config", str(config_path)], cwd=PROJECT_ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(job.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("epoch 1/40" in line for line in lines), 180, "the first epoch in the job log")
        assert checkpoint_names(Storage(config.storage.uri), "spot") == []  # periodic checkpoints are off
        job.send_signal(signal.SIGTERM)
        job.wait(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    reader.join(timeout=10)
    summary = json.loads([line for line in lines if line.startswith("{")][-1])
    assert summary["status"] == "preempted", "".join(lines[-30:])
    assert job.returncode == EXIT_PREEMPTED  # a RayJob's backoffLimit reruns it
    stopped_at = summary["epochs_completed"]
    names = checkpoint_names(Storage(config.storage.uri), "spot")
    assert len(names) == 1, names  # written after the signal
    assert summary["sigterm_to_stop_s"] < config.spot.grace_period

    resumed = run_training(config.model_copy(update={
        "training": config.training.model_copy(update={"num_epochs": stopped_at + 1})}))
    assert resumed["status"] == "completed", resumed
    assert resumed["mlflow_run_id"] == summary["mlflow_run_id"]
    assert history(config.mlflow.tracking_uri, resumed["mlflow_run_id"], "start_epoch")[-1] == stopped_at + 1
    assert resumed["epochs_completed"] == stopped_at + 1


def test_sigterm_to_a_worker_checkpoints_and_the_run_resumes_from_it(ray_cluster, small_data_dir, tmp_path):
    num_epochs = 6
    config = training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             run_name="worker-spot",
                             training={"num_epochs": num_epochs, "batch_size": 8,
                                       "checkpointing": {"frequency": 1000, "keep_best": 1}})
    mlflow_uri = config.mlflow.tracking_uri

    terminator = WorkerSignaller(ray_cluster.dashboard_url, signal.SIGTERM, ready=lambda: epochs_logged(mlflow_uri) >= 1)
    summary = run_training(config)
    terminator.join()
    assert summary["status"] == "completed", summary
    starts = history(mlflow_uri, summary["mlflow_run_id"], "start_epoch")
    # periodic checkpoints are off: resuming after epoch 1 needs the checkpoint written on SIGTERM
    assert len(starts) == 2 and starts[0] == 1 and starts[1] > 1, starts
    epochs_run = len(history(mlflow_uri, summary["mlflow_run_id"], "train_loss"))
    assert num_epochs <= epochs_run <= num_epochs + 1  # at most the interrupted epoch is repeated
