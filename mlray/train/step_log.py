"""The step log: rank 0's loss at every optimizer step, in a file. Test and benchmark tooling.

What step-exact resume is checked against (tests) and steps lost are counted from (bench.chaos).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlray.train.callbacks import LoopStart, TrainingCallback


@dataclass
class StepLog(TrainingCallback):
    """A callback: rank 0 appends ``<step> <loss> <unix time>`` to ``path`` after every optimizer step, and a
    ``start <pid> <world size>`` line each time the workers start (first run, restart, resume)."""

    rank_zero_only = True
    path: str
    _file: IO[str] | None = field(default=None, init=False, repr=False, compare=False)

    def on_start(self, start: LoopStart) -> None:
        self._file = Path(self.path).open("a", buffering=1)  # line-buffered: a killed worker leaves whole lines
        self._file.write(f"start {os.getpid()} {start.world_size}\n")

    def after_step(self, step: int, loss: float) -> None:
        if self._file is not None:
            self._file.write(f"{step} {loss!r} {time.time():.6f}\n")

    def on_end(self, last: dict) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_step_log(path: Path) -> list[list[tuple[int, float, float]]]:
    """A ``StepLog`` file: per start of the workers that took any step, its ``(step, loss, time)`` rows."""
    parts: list[list[tuple[int, float, float]]] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("start"):
            parts.append([])
        elif parts:
            step, loss, at = line.split()
            parts[-1].append((int(step), float(loss), float(at)))
    return [part for part in parts if part]


def step_log_starts(path: Path) -> list[tuple[int, int, int | None]]:
    """Each start of the workers in a ``StepLog`` file: (rank 0's pid, world size, its first step or None)."""
    starts: list[tuple[int, int, int | None]] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("start"):
            _, pid, world = line.split()
            starts.append((int(pid), int(world), None))
        elif starts and starts[-1][2] is None:
            starts[-1] = (*starts[-1][:2], int(line.split()[0]))
    return starts


def step_log_pid(path: Path) -> int | None:
    """The process id of rank 0's latest start, from a ``StepLog`` file."""
    starts = step_log_starts(path)
    return starts[-1][0] if starts else None
