"""``python -m jobs.train`` through ``ray job submit``, as a user runs it on a cluster."""

from __future__ import annotations

import sys

import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient

from mlray.train.tracking import RUN_NAME_TAG
from tests.job_submit import job_summary, submit
from tests.train.conftest import training_config
from tests.train.test_ray_training import history

pytestmark = pytest.mark.slow


def test_training_job_runs_through_ray_job_submit(ray_cluster, mlflow_server, small_data_dir, tmp_path):
    config = training_config(small_data_dir, str(tmp_path / "storage"), mlflow_server.url,
                             run_name="submitted", training={"num_epochs": 2})
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    result = submit(ray_cluster.dashboard_url, sys.executable, "-m", "jobs.train", "--config", str(config_path))

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    summary = job_summary(result.stdout, "train")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2, summary
    assert "epoch 1/2" in output and "epoch 2/2" in output  # per-epoch progress in the job's log
    run = MlflowClient(config.mlflow.tracking_uri).get_run(summary["mlflow_run_id"])
    assert run.data.tags[RUN_NAME_TAG] == "submitted"
    assert run.data.tags["ray.job_id"] not in ("", ray.get_runtime_context().get_job_id())  # the job's own id
    assert history(config.mlflow.tracking_uri, summary["mlflow_run_id"], "train_loss") and summary["model_uri"]

