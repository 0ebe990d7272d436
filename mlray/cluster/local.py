"""A local Ray head for development: dashboard, jobs API and Ray client.

``python -m mlray.cluster up`` (``make cluster-up``) starts a head on loopback
with the dashboard on 127.0.0.1:8265 and the Ray client on 10001, so that::

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 \
        --working-dir . -- python -m jobs.train --config configs/training.yaml
    RAY_AUTH_MODE=token python -c 'import ray; ray.init("ray://127.0.0.1:10001")'

both work. Ray 2.60 runs ``ray start`` clusters with token authentication;
clients find the token in ``~/.ray/auth_token`` once ``RAY_AUTH_MODE=token``
is set. We keep it on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlray.cluster.runtime import worker_env_vars

LOOPBACK = "127.0.0.1"
# The head's own temp dir: its processes name it, so stop_head finds exactly them.
CLUSTER_TEMP_DIR = Path(tempfile.gettempdir()) / f"mlray-cluster-{os.getuid()}"


@dataclass(frozen=True)
class LocalClusterPorts:
    gcs: int = 6379
    dashboard: int = 8265
    client: int = 10001
    metrics_export: int = 8080
    # Not Ray's 52365: ray.init() clusters (tests, the demo) cannot move theirs, and a second
    # agent on the same port leaves this head unable to accept jobs.
    dashboard_agent: int = 52375

    @property
    def dashboard_url(self) -> str:
        return f"http://{LOOPBACK}:{self.dashboard}"

    @property
    def client_address(self) -> str:
        return f"ray://{LOOPBACK}:{self.client}"

    @property
    def gcs_address(self) -> str:
        return f"{LOOPBACK}:{self.gcs}"


def ray_executable() -> str:
    """The ``ray`` CLI of the interpreter running us (the project's venv)."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


def client_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for processes that talk to a token-authenticated cluster."""
    env = dict(os.environ if base is None else base)
    env["RAY_AUTH_MODE"] = "token"
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    return env


def start_head(
    ports: LocalClusterPorts = LocalClusterPorts(),
    num_cpus: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> None:
    """``ray start --head`` on loopback; raises CalledProcessError if it fails."""
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
        f"--temp-dir={CLUSTER_TEMP_DIR}",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    # Workers inherit the head's environment: storage endpoints must be in it.
    env = client_env()
    env.update(worker_env_vars())
    env.update(extra_env or {})
    subprocess.run(command, check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def cluster_processes() -> list[int]:
    """PIDs of the head's processes: those naming its temp dir (workers exit with their raylet)."""
    marker = str(CLUSTER_TEMP_DIR).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:  # exited while we looked
                continue
    return pids


def stop_head(timeout_s: float = 30.0) -> list[int]:
    """Stop the cluster ``start_head`` started and nothing else (``ray stop`` would stop every Ray on the machine)."""
    pids = cluster_processes()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.2)  # poll interval while processes exit
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        if not pids:
            break
    return cluster_processes()
