"""A local ``mlflow server``: SQLite backend store, artifacts proxied to local disk or ``gs://``.

``make cluster-up`` and the tests start one so that jobs, Ray workers and Ray
client sessions all talk to MLflow over HTTP, as they do to the tracking server
in ``clusters/`` on GKE. Artifacts go through the server (``--serve-artifacts``):
clients need no access to the artifact store, only the server does (for
``gs://`` on the emulator it inherits ``STORAGE_EMULATOR_HOST``).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mlray.cluster.processes import in_group, stop_processes
from mlray.storage.emulator import free_port

LOOPBACK = "127.0.0.1"
# A first start creates the SQLite schema (dozens of migrations): over 60 s was seen on 2 busy cores.
READY_TIMEOUT_S = 120.0


def mlflow_executable() -> str:
    beside = Path(sys.executable).with_name("mlflow")
    if not beside.exists():
        raise RuntimeError(f"mlflow is not installed beside {sys.executable}: pip install -e '.[dev]'")
    return str(beside)


@dataclass
class MlflowServer:
    """One ``mlflow server`` process group on loopback.

    ``backend_db`` is the SQLite file of runs and the model registry;
    ``artifacts_destination`` a local folder or a ``gs://bucket/prefix``.
    """

    backend_db: Path
    artifacts_destination: str
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        destination = self.artifacts_destination
        if "://" not in destination:
            destination = str(Path(destination).resolve())
        return [
            mlflow_executable(), "server",
            "--host", LOOPBACK, "--port", str(self.port),
            "--workers", "1",  # one uvicorn worker: a laptop-sized server, a few hundred MB less
            "--backend-store-uri", f"sqlite:///{self.backend_db.resolve()}",
            "--serve-artifacts", "--artifacts-destination", destination,
        ]  # fmt: skip

    def start(self) -> MlflowServer:
        self.backend_db.parent.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or self.backend_db.with_suffix(".server.log")
        with open(log_path, "ab") as log:
            # Its own session: stop() ends the server and the uvicorn workers it spawns together.
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ready(log_path)
        return self

    def _wait_ready(self, log_path: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{tail}")
            if server_answers(self.url):
                return
            time.sleep(0.2)  # poll interval while the server migrates its database and binds
        self.stop()
        raise TimeoutError(f"mlflow server: no answer on {self.url} in {READY_TIMEOUT_S} s (see {log_path})")

    def stop(self) -> None:
        if self.process is not None:
            stop_processes(in_group(self.process.pid))
            self.process.wait()  # reaped: a zombie's pid would linger
            self.process = None


def server_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
