"""Session-wide real services: one Ray cluster, one GCS emulator, MLflow on SQLite.

Nothing here is mocked. Fixtures are lazy: a test that needs no Ray starts none.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("FEAST_USAGE", "False")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from mlray.cluster.runtime import worker_env_vars  # noqa: E402
from mlray.storage.emulator import GcsEmulator, free_port  # noqa: E402
from tests.security_probes import RECORDER, Probe, probes_path  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_BUCKET = "mlray-test"
RAY_TEST_CPUS = 4  # logical CPUs: lets a 2-worker trainer and a driver actor fit on 2 cores


@pytest.fixture(scope="session")
def instances_dir() -> Path:
    """The benchmark instances shipped in the package (mlray/optimize/instances/)."""
    from mlray.optimize.instances import INSTANCES_ROOT

    return INSTANCES_ROOT


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """A real GCS API server on a free loopback port, for the whole session.

    Exports STORAGE_EMULATOR_HOST before any Ray cluster starts, so Ray workers
    reach the same server.
    """
    emulator = GcsEmulator().start()
    emulator.export_env()
    emulator.create_bucket(TEST_BUCKET)
    yield emulator
    emulator.stop()
    os.environ.pop("STORAGE_EMULATOR_HOST", None)


@pytest.fixture
def gcs_uri(gcs_emulator: GcsEmulator) -> str:
    """A fresh ``gs://`` prefix on the emulator for one test."""
    return f"gs://{TEST_BUCKET}/{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class RayTestCluster:
    gcs_address: str
    dashboard_url: str


@pytest.fixture(scope="session")
def ray_cluster(gcs_emulator: GcsEmulator) -> Iterator[RayTestCluster]:
    """One local Ray cluster for the whole session, this process its driver.

    Started in-process (``ray.init``) so that teardown stops exactly this
    cluster and nothing else on the machine. Token authentication is on (the
    token lands in ~/.ray/auth_token), the dashboard and jobs API listen on a
    free loopback port, and subprocesses (``ray job submit``, ``serve run``)
    can join through ``gcs_address``.
    """
    import ray

    from ray._private.utils import write_ray_address

    dashboard_port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="mlray-ts-")  # short: Ray's socket paths live under it
    ray.init(
        num_cpus=RAY_TEST_CPUS,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=dashboard_port,
        runtime_env={"env_vars": worker_env_vars()},
        _temp_dir=temp_dir,
    )
    cluster = RayTestCluster(
        gcs_address=ray.get_runtime_context().gcs_address,
        dashboard_url=f"http://127.0.0.1:{dashboard_port}",
    )
    # A submitted job's driver gets the address Ray resolves from "auto": the cluster named in
    # <temp dir>/ray_current_cluster, which `ray start` writes and ray.init does not; without it,
    # any GCS process on the machine. With a child test's cluster still about, a job's driver
    # joined that cluster, where its actors found no working-dir package (seen in CI).
    write_ray_address(cluster.gcs_address, temp_dir)
    yield cluster
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def mlflow_uri(tmp_path: Path) -> str:
    """MLflow tracking on a SQLite file in this test's temporary folder."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def security_probe(request: pytest.FixtureRequest):
    """``security_probe(area, probe, expected, observed)``: record one attack or fault and what it met.

    Call it after asserting the behaviour, with the value actually observed; see tests/security_probes.py.
    """

    def record(area: str, probe: str, expected: str, observed: object) -> None:
        RECORDER.probes.append(Probe(area, probe, expected, str(observed), request.node.nodeid))

    return record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = probes_path()
    if path is not None:
        RECORDER.write(path)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """A real ``mlflow server`` on a free loopback port for the session: SQLite store, artifacts
    proxied to a local folder. Talk to it over HTTP through ``mlflow_server.url``."""
    from mlray.cluster.mlflow_server import MlflowServer

    root = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(backend_db=root / "mlflow.db", artifacts_destination=str(root / "artifacts")).start()
    yield server
    server.stop()
