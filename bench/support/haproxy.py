"""HAProxy of Ray Serve's HAProxy mode on a shared machine, for bench/ and tests (not part of the library).

Ray's HAProxy binds fixed things on every node (a stats page on 8404, a Prometheus exporter on 9101, its admin
socket, config and state under /tmp/haproxy-serve/<node id>/). ``local_haproxy_env`` moves them for a cluster
that shares its machine with others; the admin socket then answers ``show stat`` and ``show info``
(``haproxy_stats``, ``haproxy_snapshot``: which server got the requests), and ``stop_haproxy`` stops the
HAProxies a cluster killed otherwise than by ``serve.shutdown()`` leaves behind. The serving env itself
(``SERVING_ENV``) and the binary Ray runs (``haproxy_binary``) are the library's: ``mlray.serve.cluster_env``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Server names HAProxyManager gives the servers of an app's backend (``http-<app>``).
REPLICA_SERVER_PREFIX = "SERVE_REPLICA_"
FALLBACK_SERVER_PREFIX = "SERVE_PROXY_ACTOR-"


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
