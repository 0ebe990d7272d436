"""A cluster started the way ``make cluster-up`` starts one, on free ports beside the session's."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlray.cluster.local import LocalCluster, LocalClusterPorts

CLUSTER_CPUS = 4


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """``LocalCluster.up()`` (what ``python -m mlray.cluster up`` runs): an MLflow server, then ``ray start --head``.

    Its project folder (runs/mlflow.db, runs/storage) is a temporary one; its Ray temp dir is
    short (Ray's socket paths have a length limit) and its own, so that teardown stops exactly
    this cluster and not the session's or a developer's.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="mlray-tc-"))
    cluster = LocalCluster(
        project_dir=tmp_path_factory.mktemp("cluster-project"),
        ports=LocalClusterPorts.free(),
        temp_dir=temp_dir,
        num_cpus=CLUSTER_CPUS,
    )
    cluster.up()
    yield cluster
    left = cluster.down()
    shutil.rmtree(temp_dir, ignore_errors=True)
    assert not left, f"cluster processes still running after down(): {left}"
