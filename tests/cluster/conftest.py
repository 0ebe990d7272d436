"""A cluster started the way ``make cluster-up`` starts one, on free ports beside the session's."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlray.cluster.local import LocalCluster, LocalClusterPorts

CLUSTER_CPUS = 4
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# What a checkout holds besides its sources: ignored here, excluded from `ray job submit` uploads there.
NOT_SOURCES = shutil.ignore_patterns(".venv", "runs", "data", "mlruns", ".git", "__pycache__", ".pytest_cache", "*.egg-info")


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """``LocalCluster.up()`` (what ``python -m mlray.cluster up`` runs): an MLflow server, then ``ray start --head``.

    Its project folder is a copy of this checkout's sources, where ``make cluster-up`` and the
    README's commands run (runs/mlflow.db, runs/storage and data/ land in it); its Ray temp dir is
    short (Ray's socket paths have a length limit) and its own, so that teardown stops exactly
    this cluster and not the session's or a developer's.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="mlray-tc-"))
    project_dir = tmp_path_factory.mktemp("cluster") / "project"
    shutil.copytree(PROJECT_ROOT, project_dir, ignore=NOT_SOURCES, symlinks=True)
    cluster = LocalCluster(
        project_dir=project_dir,
        ports=LocalClusterPorts.free(),
        temp_dir=temp_dir,
        num_cpus=CLUSTER_CPUS,
    )
    cluster.up()
    yield cluster
    left = cluster.down()
    shutil.rmtree(temp_dir, ignore_errors=True)
    assert not left, f"cluster processes still running after down(): {left}"
