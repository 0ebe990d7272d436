"""Finding and stopping our own processes, through psutil (so also where there is no /proc, as on macOS).

Zombies count as gone: in a container whose PID 1 does not reap, an exited
daemon stays in the process table (and answers ``kill(pid, 0)``) for ever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable

import psutil


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # exited while we looked
        return False


def live_pids(matches: Callable[[int], bool]) -> list[int]:
    """PIDs of running (not zombie) processes for which ``matches(pid)`` holds."""
    return [process.pid for process in psutil.process_iter() if _running(process) and matches(process.pid)]


def in_group(pgid: int) -> Callable[[int], bool]:
    def matches(pid: int) -> bool:
        try:
            return os.getpgid(pid) == pgid
        except OSError:
            return False

    return matches


def naming(marker: str) -> Callable[[int], bool]:
    """Processes whose command line contains ``marker``."""

    def matches(pid: int) -> bool:
        try:
            return marker in "\0".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            return False

    return matches


def stop_processes(matches: Callable[[int], bool], timeout_s: float = 30.0) -> list[int]:
    """SIGTERM what ``matches``, SIGKILL what is left after ``timeout_s``; the PIDs still running."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = live_pids(matches)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if pid in live_pids(matches)]
            if pids:
                time.sleep(0.2)  # poll interval while processes exit
        if not pids:
            break
    return live_pids(matches)
