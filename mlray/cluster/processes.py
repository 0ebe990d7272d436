"""Finding and stopping our own processes through /proc.

Zombies count as gone: in a container whose PID 1 does not reap, an exited
daemon stays in /proc (and answers ``kill(pid, 0)``) for ever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (which may hold spaces): state, ppid, pgrp, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # exited while we looked
        return None
    return text[text.rfind(")") + 2 :].split()


def live_pids(matches: Callable[[int], bool]) -> list[int]:
    """PIDs of running (not zombie) processes for which ``matches(pid)`` holds."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z" and matches(int(entry.name)):
                found.append(int(entry.name))
    return found


def in_group(pgid: int) -> Callable[[int], bool]:
    def matches(pid: int) -> bool:
        fields = _stat_fields(pid)
        return bool(fields) and fields[2] == str(pgid)

    return matches


def naming(marker: str) -> Callable[[int], bool]:
    """Processes whose command line contains ``marker``."""
    encoded = marker.encode()

    def matches(pid: int) -> bool:
        try:
            return encoded in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
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
