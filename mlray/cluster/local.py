"""A local Ray head for development: dashboard, jobs API, Ray client, and an MLflow server.

``python -m mlray.cluster up`` (``make cluster-up``) starts an ``mlflow server``
on 127.0.0.1:5000 (runs/mlflow.db, artifacts in runs/mlflow-artifacts or under a
``gs://`` storage URI) and a Ray head on loopback with the dashboard on
127.0.0.1:8265 and the Ray client on 10001, so that::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \
        --working-dir . -- python -m jobs.train --config configs/train.yaml
    RAY_AUTH_MODE=token python -c 'import ray; ray.init("ray://127.0.0.1:10001")'

both work. Ray 2.60 runs ``ray start`` clusters with token authentication;
clients find the token in ``~/.ray/auth_token`` once ``RAY_AUTH_MODE=token``
is set. We keep it on.

The head runs with the project's environment: the venv's ``bin`` first on PATH
(a job's ``python`` is the project's interpreter), storage and MLflow as
``MLRAY_`` overrides with absolute locations, because a job submitted with
``--working-dir`` runs in Ray's unpacked copy of the folder, where relative
paths such as ``runs/storage`` would land in a throwaway directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

from mlray.cluster.mlflow_server import MlflowServer
from mlray.cluster.processes import in_group, live_pids, naming, stop_processes
from mlray.cluster.runtime import worker_env_vars
from mlray.process_env import PLATFORM_ENV, apply
from mlray.storage.emulator import free_port

LOOPBACK = "127.0.0.1"
# The head's own temp dir: its processes name it, so stop_head finds exactly them.
CLUSTER_TEMP_DIR = Path(tempfile.gettempdir()) / f"mlray-cluster-{os.getuid()}"
MLFLOW_PID_FILE = "mlflow-server.pid"


@dataclass(frozen=True)
class LocalClusterPorts:
    gcs: int = 6379
    dashboard: int = 8265
    client: int = 10001
    metrics_export: int = 8080
    # Not Ray's 52365: ray.init() clusters (tests, the demo) cannot move theirs, and a second
    # agent on the same port leaves this head unable to accept jobs.
    dashboard_agent: int = 52375
    mlflow: int = 5000

    @classmethod
    def free(cls) -> LocalClusterPorts:
        """Free loopback ports for every service: a cluster beside the default one (tests)."""
        return cls(**{port.name: free_port() for port in fields(cls)})

    @property
    def dashboard_url(self) -> str:
        return f"http://{LOOPBACK}:{self.dashboard}"

    @property
    def client_address(self) -> str:
        return f"ray://{LOOPBACK}:{self.client}"

    @property
    def gcs_address(self) -> str:
        return f"{LOOPBACK}:{self.gcs}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{LOOPBACK}:{self.mlflow}"


def ray_executable() -> str:
    """The ``ray`` CLI of the interpreter running us (the project's venv)."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


def client_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for processes that talk to a token-authenticated cluster."""
    env = dict(os.environ if base is None else base)
    env["RAY_AUTH_MODE"] = "token"
    apply(PLATFORM_ENV, env)  # mlray.process_env: the platform's settings win
    return env


def interpreter_first_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this interpreter's ``bin`` first on PATH, so that a job's ``python`` is this one."""
    bin_dir = str(Path(sys.executable).parent)  # not resolved: a venv's python is a symlink out of it
    env = dict(env)
    rest = [path for path in env.get("PATH", "").split(os.pathsep) if path and path != bin_dir]
    env["PATH"] = os.pathsep.join([bin_dir, *rest])
    if Path(bin_dir, "activate").exists():
        env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
    return env


def ensure_auth_token() -> None:
    """Create ``~/.ray/auth_token`` if there is none: ``ray start`` with token auth refuses to run without one
    (``ray.init`` makes one itself, so a machine that only ever ran tests has it, a fresh one does not)."""
    subprocess.run(
        [ray_executable(), "get-auth-token", "--generate"],
        check=True, env=client_env(), stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # it prints the token
    )  # fmt: skip


def start_head(
    ports: LocalClusterPorts = LocalClusterPorts(),
    num_cpus: int | None = None,
    extra_env: dict[str, str] | None = None,
    temp_dir: Path = CLUSTER_TEMP_DIR,
) -> None:
    """``ray start --head`` on loopback; raises CalledProcessError if it fails."""
    ensure_auth_token()
    # Workers and job drivers inherit the head's environment: interpreter, storage and MLflow must be in it.
    env = interpreter_first_on_path(client_env())
    env.update(worker_env_vars())
    env.update(extra_env or {})
    subprocess.run(head_command(ports, num_cpus, temp_dir), check=True, env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True)  # fmt: skip


def head_command(ports: LocalClusterPorts, num_cpus: int | None, temp_dir: Path) -> list[str]:
    """The ``ray start --head`` command line of a loopback head on ``ports``."""
    command = [
        ray_executable(),
        "start",
        "--head",
        f"--node-ip-address={LOOPBACK}",
        f"--port={ports.gcs}",
        "--include-dashboard=true",
        f"--dashboard-host={LOOPBACK}",
        f"--dashboard-port={ports.dashboard}",
        f"--ray-client-server-port={ports.client}",
        f"--metrics-export-port={ports.metrics_export}",
        f"--dashboard-agent-listen-port={ports.dashboard_agent}",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    return command


def cluster_processes(temp_dir: Path = CLUSTER_TEMP_DIR) -> list[int]:
    """PIDs of the head's processes: those naming its temp dir (workers exit with their raylet)."""
    return live_pids(naming(str(temp_dir)))


def stop_head(timeout_s: float = 30.0, temp_dir: Path = CLUSTER_TEMP_DIR) -> list[int]:
    """Stop the cluster ``start_head`` started and nothing else (``ray stop`` would stop every Ray here)."""
    return stop_processes(naming(str(temp_dir)), timeout_s)


@dataclass(frozen=True)
class LocalCluster:
    """What ``make cluster-up`` starts: an MLflow server, then a Ray head that sends jobs to it.

    ``storage_uri`` (default ``<project_dir>/runs/storage``) and the MLflow server
    reach every job as ``MLRAY_STORAGE__URI`` and ``MLRAY_MLFLOW__TRACKING_URI``.
    MLflow's runs and registry live in ``<project_dir>/runs/mlflow.db`` (the
    configs' default store, so runs from before stay visible); its artifacts in
    ``<project_dir>/runs/mlflow-artifacts``, or ``<storage_uri>/mlflow-artifacts``
    when storage is ``gs://``.
    """

    project_dir: Path = field(default_factory=Path.cwd)
    ports: LocalClusterPorts = LocalClusterPorts()
    temp_dir: Path = CLUSTER_TEMP_DIR
    storage_uri: str | None = None
    num_cpus: int | None = None

    @property
    def storage(self) -> str:
        uri = self.storage_uri or "runs/storage"
        return uri if "://" in uri else str((self.project_dir / uri).resolve())

    @property
    def mlflow_artifacts(self) -> str:
        if self.storage.startswith("gs://"):
            return f"{self.storage}/mlflow-artifacts"
        return str(self.project_dir.resolve() / "runs" / "mlflow-artifacts")

    def mlflow_server(self) -> MlflowServer:
        return MlflowServer(
            backend_db=self.project_dir.resolve() / "runs" / "mlflow.db",
            artifacts_destination=self.mlflow_artifacts,
            port=self.ports.mlflow,
            log_path=self.temp_dir / "mlflow-server.log",
        )

    def job_env(self) -> dict[str, str]:
        """What every job on this cluster sees: absolute storage, MLflow over HTTP."""
        url = self.ports.mlflow_url
        return {
            "MLRAY_STORAGE__URI": self.storage,
            "MLRAY_MLFLOW__TRACKING_URI": url,
            "MLFLOW_TRACKING_URI": url,
        }

    def up(self) -> None:
        """Start MLflow, then Ray; raises (with nothing left running) if either fails."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        server = self.mlflow_server().start()
        assert server.process is not None
        (self.temp_dir / MLFLOW_PID_FILE).write_text(str(server.process.pid))
        try:
            start_head(self.ports, num_cpus=self.num_cpus, extra_env=self.job_env(), temp_dir=self.temp_dir)
        except BaseException:
            stop_head(temp_dir=self.temp_dir)
            self._stop_mlflow()
            raise

    def down(self) -> list[int]:
        """Stop Ray, then MLflow; the PIDs of this cluster still running (none when it went well)."""
        # gcs_server and the autoscaler monitor outlive a SIGTERM by 30 s and more; `ray stop` waits 16.
        left = stop_head(timeout_s=10.0, temp_dir=self.temp_dir)
        self._stop_mlflow()
        return left

    def _stop_mlflow(self) -> None:
        pid_file = self.temp_dir / MLFLOW_PID_FILE
        if pid_file.exists():
            stop_processes(in_group(int(pid_file.read_text())))
            pid_file.unlink()
