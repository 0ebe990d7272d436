"""A Ray client session: another Python process drives training and optimization on the cluster.

The cluster is started the way ``make cluster-up`` starts it (``local_cluster``); the client is a
separate interpreter that only knows ``ray://127.0.0.1:PORT``, the MLflow server's URL and a
storage folder, and uses mlray's Python API as the README shows it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlray.cluster.local import LocalCluster, client_env
from mlray.storage import Storage

CLIENT_SCRIPT = """
import json, sys
from mlray.config.loader import load_config
from mlray.config.optimize import OptimizeJobConfig
from mlray.config.preprocess import PreprocessJobConfig
from mlray.config.train import TrainJobConfig
from mlray.optimize import SchedulingOptimizer
from mlray.train import run_training
from mlray.usecases.preprocess import run_preprocessing

address, mlflow_url, storage, data, plots, instance = sys.argv[1:]
run_preprocessing(load_config(PreprocessJobConfig, "configs/preprocess.yaml",
                              [f"output={data}", "driver_trips.num_trips=2000"]))
session = [f"ray.address={address}", f"storage.uri={storage}", f"mlflow.tracking_uri={mlflow_url}"]
trained = run_training(load_config(TrainJobConfig, "configs/train.yaml", [
    *session, f"data.kwargs.path={data}/training.parquet", "training.num_epochs=2", "run_name=client-train"]))
solver = load_config(OptimizeJobConfig, "configs/optimize.yaml", [
    *session, f"output.dir={plots}", "solver.time_limit=5", "run_name=client-solve"])
solved = SchedulingOptimizer(solver).parallel_solve(instance)
import ray
print(json.dumps({"train": trained, "solve": solved.summary(), "client": ray.util.client.ray.is_connected()}))
"""


def client_server_logs(cluster: LocalCluster) -> str:
    """The tails of the Ray client servers' stderr: why a session could not start is only there."""
    logs = sorted((cluster.temp_dir / "session_latest" / "logs").glob("ray_client_server*.err"))
    return "".join(f"\n--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in logs)


@pytest.mark.slow
def test_ray_client_session_trains_and_solves_on_the_cluster(local_cluster, instances_dir, tmp_path):
    storage = tmp_path / "storage"
    command = [
        sys.executable, "-c", CLIENT_SCRIPT, local_cluster.ports.client_address, local_cluster.ports.mlflow_url,
        str(storage), str(tmp_path / "data"), str(tmp_path / "plots"), str(instances_dir / "jsp" / "ft06"),
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=local_cluster.project_dir, capture_output=True, text=True, env=client_env(), timeout=600
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + client_server_logs(local_cluster)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["client"] is True  # the driver really was a Ray client, not a local cluster of its own
    trained, solved = report["train"], report["solve"]
    assert trained["status"] == "completed" and trained["epochs_completed"] == 2, trained
    assert solved["feasible"] and solved["objective"] >= solved["best_known"], solved

    # Results are where the cluster and the MLflow server put them, not in the client's memory.
    assert Storage(trained["checkpoint_uri"]).list(), trained["checkpoint_uri"]
    assert Path(trained["checkpoint_uri"]).is_relative_to(storage)
    mlflow = MlflowClient(local_cluster.ports.mlflow_url)
    train_run = mlflow.get_run(trained["mlflow_run_id"])
    assert train_run.info.status == "FINISHED"
    assert [m.step for m in mlflow.get_metric_history(train_run.info.run_id, "train_loss")] == [1, 2]
    solve_run = mlflow.get_run(solved["mlflow_run_id"])
    assert solve_run.data.metrics["objective"] == solved["objective"]
    uploaded = [a.path for a in mlflow.list_artifacts(solve_run.info.run_id, "plots")]
    assert uploaded and all(path.endswith(".png") for path in uploaded), uploaded  # through the server's proxy
