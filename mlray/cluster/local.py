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

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlray.cluster.runtime import worker_env_vars

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class LocalClusterPorts:
    gcs: int = 6379
    dashboard: int = 8265
    client: int = 10001
    metrics_export: int = 8080

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
        "--disable-usage-stats",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    # Workers inherit the head's environment: storage endpoints must be in it.
    env = client_env()
    env.update(worker_env_vars())
    env.update(extra_env or {})
    subprocess.run(command, check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_all() -> None:
    """``ray stop --force``: every Ray process this user started on this machine."""
    subprocess.run([ray_executable(), "stop", "--force"], check=False, env=client_env(), capture_output=True)
