"""The local ``mlflow server`` of ``make cluster-up``, the demo and the ``mlflow_server`` fixture."""

from __future__ import annotations

import urllib.error
import urllib.request

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlray.cluster.mlflow_server import MlflowServer
from mlray.cluster.processes import in_group, live_pids
from mlray.storage import Storage


def test_artifacts_go_through_the_server_to_gcs(gcs_uri, tmp_path):
    server = MlflowServer(backend_db=tmp_path / "mlflow.db", artifacts_destination=f"{gcs_uri}/mlflow-artifacts")
    server.start()
    try:
        client = MlflowClient(server.url)
        run = client.create_run(client.create_experiment("artifacts"))
        (tmp_path / "model.txt").write_text("weights")
        client.log_artifact(run.info.run_id, str(tmp_path / "model.txt"))
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # clients never see the bucket
        artifacts = Storage(f"{gcs_uri}/mlflow-artifacts")
        stored = artifacts.fs.find(artifacts.root)
        assert any(path.endswith("model.txt") for path in stored), stored
        downloaded = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="model.txt", dst_path=str(tmp_path / "back"), tracking_uri=server.url
        )
        assert open(downloaded).read() == "weights"
        assert (tmp_path / "mlflow.db").stat().st_size > 0  # runs in the SQLite backend store
        group = server.process.pid
    finally:
        server.stop()
    assert not live_pids(in_group(group)), "mlflow server processes left after stop()"


@pytest.mark.security
def test_server_refuses_a_foreign_host_header(mlflow_server, security_probe):
    """DNS rebinding: a page on another origin resolving to 127.0.0.1 must not drive the API."""
    request = urllib.request.Request(
        f"{mlflow_server.url}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": "evil.example:80"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert 400 <= refused.value.code < 500
    with urllib.request.urlopen(f"{mlflow_server.url}/api/2.0/mlflow/experiments/search?max_results=1") as ok:
        assert ok.status == 200  # the same request with the server's own host is served
    security_probe(
        "cluster", "MLflow API with a foreign Host header (DNS rebinding)", "4xx, not served",
        f"{refused.value.code} {refused.value.read()[:120]!r}",
    )  # fmt: skip
