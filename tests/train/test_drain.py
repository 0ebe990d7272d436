"""Ray drains a training node for a spot preemption: checkpoint on the notice, restart on a new node, resume.

The drain, the replacement node and the removal happen in a child process with
a cluster of its own (``tests/train/drain_run.py``): a draining node refuses new
work, so the session's single-node cluster must never be drained.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlray.cluster.local import ensure_auth_token
from mlray.train.checkpoint import progress_of
from tests.train.conftest import training_config
from tests.train.test_ray_training import history

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 480


def run_child(config_path: Path, result_path: Path, log_path: Path, module: str = "tests.train.drain_run",
              timeout_s: float = CHILD_TIMEOUT_S) -> None:
    """``module`` (a child with a cluster of its own) in its own session; on timeout its whole process group
    (cluster included) is killed."""
    ensure_auth_token()  # the child's cluster has token auth: on a fresh machine no test made one yet
    ray_tmp = tempfile.mkdtemp(prefix="mlray-child-", dir="/tmp")  # short: Ray's socket paths live under it
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    try:
        with log_path.open("w") as log:
            child = subprocess.Popen([sys.executable, "-m", module, str(config_path),
                                      str(result_path)], cwd=PROJECT_ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
            try:
                child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{module} did not finish in {timeout_s:.0f} s:\n{tail(log_path)}")
            finally:
                kill_group(child)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def kill_group(child: subprocess.Popen) -> None:
    """SIGKILL to the child's process group: its Ray processes too, if it left any behind."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_drained_node_checkpoints_on_the_notice_and_the_run_resumes_on_a_new_node(small_data_dir, tmp_path):
    num_epochs = 20
    config = training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             run_name="drain",
                             training={"num_epochs": num_epochs, "batch_size": 16,
                                       "checkpointing": {"frequency": 1000, "keep_best": 1}})
    config_path, result_path, log_path = tmp_path / "config.json", tmp_path / "result.json", tmp_path / "child.log"
    config_path.write_text(json.dumps(config.model_dump(mode="json")))

    run_child(config_path, result_path, log_path)
    assert result_path.exists(), tail(log_path)
    result = json.loads(result_path.read_text())
    # How Ray Train's failure policy counted the restart (preemption or worker group), for the record.
    sources = re.findall(r"Source: (.+)", log_path.read_text(errors="replace"))
    context = f"{json.dumps(result, indent=1)}\nrestarts counted as: {sources}\n{tail(log_path)}"
    assert result["errors"] == [], context
    assert result["driver_node"] == result["head_node"], context  # removing the drained node spares the driver

    # Ray took the drain and reported it with its deadline; periodic checkpoints are off,
    assert result["drain"]["accepted"], context
    assert result["draining_nodes"] == {result["drained_node"]: result["drain"]["deadline_ms"]}, context
    assert result["checkpoints_before_drain"] == [], context
    # so the one checkpoint there is when the node goes is the one the notice made the loop write, at its next
    # stop check (inside an epoch, most likely): in epoch 2 or later, since the drain came after epoch 1.
    (notice_checkpoint,) = result["checkpoints_at_removal"]
    notice_epoch, notice_step = progress_of(notice_checkpoint)
    assert 1 <= notice_epoch <= result["epochs_logged_at_removal"] < num_epochs, context
    # The workers left the draining node at once and went on from the very next step: nothing done twice.
    resumed = f"resumed from checkpoint {notice_checkpoint}: continuing at epoch {notice_epoch + 1}, " \
              f"step {notice_step + 1}"
    assert resumed in log_path.read_text(errors="replace"), context

    nodes = result["nodes"]
    assert not nodes[result["drained_node"]]["alive"] and nodes[result["replacement_node"]]["alive"], context

    summary = result["summary"]
    assert summary["status"] == "completed", context
    assert summary["epochs_completed"] == num_epochs
    mlflow_uri = config.mlflow.tracking_uri
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_id for r in runs] == [summary["mlflow_run_id"]]  # the restart went on in the same run
    # The workers restarted (on the replacement node: the head has no CPUs) from the notice checkpoint.
    starts = history(mlflow_uri, summary["mlflow_run_id"], "start_epoch")
    assert starts[:2] == [1, notice_epoch + 1], starts
