"""The incumbent store: one Ray actor that holds the portfolio's best solution and bound.

Arms publish improving solutions fire-and-forget (``offer.remote``) and poll a
small snapshot; the payload only travels when it is newer than what the
caller already has. When the bound meets the incumbent the store declares the
solve optimal and every arm stops at its next poll.

Every improvement is written to storage as JSON (atomically, via
``Storage.open_atomic``), at most once per ``checkpoint_interval`` seconds; a
skipped write is flushed by the next call after the interval, and by
``flush()`` at the end. A rerun with the same run name reads it back with
``load_checkpoint``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from mlray.storage import Storage

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "incumbent.json"
FROM_CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Incumbent:
    objective: int
    payload: dict[str, Any]
    arm: str


@dataclass(frozen=True)
class CheckpointTarget:
    storage: Storage
    fingerprint: str
    interval: float


@dataclass
class Snapshot:
    """What an arm sees when it polls; ``incumbent`` only when newer than the caller's version."""

    version: int
    objective: int | None
    bound: int | None
    stop_reason: str | None
    incumbent: Incumbent | None = None
    allocation: dict[str, int] = field(default_factory=dict)


@dataclass
class StoreReport:
    objective: int | None
    incumbent: Incumbent | None
    bound: int | None
    bound_arm: str | None
    stop_reason: str | None
    version: int
    history: list[dict[str, Any]] = field(default_factory=list)
    bound_history: list[dict[str, Any]] = field(default_factory=list)
    seconds_since_improvement: float = 0.0
    checkpoint_writes: int = 0
    allocation_history: list[dict[str, Any]] = field(default_factory=list)


def load_checkpoint(storage: Storage, fingerprint: str) -> tuple[Incumbent, int | None] | None:
    """The checkpointed incumbent and bound, if one exists for this very problem."""
    if not storage.exists(CHECKPOINT_FILE):
        return None
    content = json.loads(storage.read_text(CHECKPOINT_FILE))
    if content.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s is for another problem; ignored", storage.url(CHECKPOINT_FILE))
        return None
    incumbent = Incumbent(int(content["objective"]), content["payload"], FROM_CHECKPOINT)
    bound = content.get("bound")
    return incumbent, None if bound is None else int(bound)


@ray.remote(num_cpus=0)
class IncumbentStore:
    def __init__(
        self,
        checkpoint: CheckpointTarget | None = None,
        initial: Incumbent | None = None,
        initial_bound: int | None = None,
        improvement_threshold: float = 0.0,
    ) -> None:
        self._started = time.monotonic()
        self._checkpoint = checkpoint
        self._threshold = improvement_threshold
        self._incumbent: Incumbent | None = None
        self._version = 0
        self._bound: int | None = None
        self._bound_arm: str | None = None
        self._stop_reason: str | None = None
        self._history: list[dict[str, Any]] = []
        self._bound_history: list[dict[str, Any]] = []
        self._reference_for_progress: int | None = None
        self._last_progress = self._started
        self._last_write = float("-inf")
        self._dirty = False
        self._writes = 0
        self._allocation: dict[str, int] = {}
        self._allocation_history: list[dict[str, Any]] = []
        if initial is not None:
            self.offer(initial.objective, initial.payload, initial.arm)
        if initial_bound is not None:
            self.offer_bound(initial_bound, FROM_CHECKPOINT)

    def start_clock(self) -> None:
        """The search begins: ``no_improvement`` counts from now at the earliest."""
        self._last_progress = max(self._last_progress, time.monotonic())

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def offer(self, objective: int, payload: dict[str, Any], arm: str) -> bool:
        """Keep the solution if it is strictly better; True when it was."""
        if self._incumbent is not None and objective >= self._incumbent.objective:
            return False
        self._incumbent = Incumbent(objective, payload, arm)
        self._version += 1
        self._history.append({"time": round(self._elapsed(), 4), "objective": objective, "arm": arm})
        if self._is_progress(objective):
            self._reference_for_progress = objective
            self._last_progress = time.monotonic()
        self._check_optimal()
        self._dirty = True
        self._maybe_write()
        return True

    def _is_progress(self, objective: int) -> bool:
        """An improvement counts for ``no_improvement`` when it beats the last counted one
        by more than ``improvement_threshold`` (a fraction of that value)."""
        reference = self._reference_for_progress
        return reference is None or reference - objective > self._threshold * abs(reference)

    def offer_bound(self, bound: int, arm: str) -> bool:
        if self._bound is not None and bound <= self._bound:
            return False
        self._bound, self._bound_arm = bound, arm
        self._bound_history.append({"time": round(self._elapsed(), 4), "bound": bound, "arm": arm})
        self._check_optimal()
        self._dirty = True
        self._maybe_write()
        return True

    def _check_optimal(self) -> None:
        if (
            self._incumbent is not None
            and self._bound is not None
            and self._bound >= self._incumbent.objective
        ):
            self.request_stop("optimal")

    def set_allocation(self, threads: dict[str, int]) -> None:
        """Solver threads per arm from now on (0: the arm parks); arms not named keep their own."""
        self._allocation = dict(threads)
        self._allocation_history.append({"time": round(self._elapsed(), 4), "threads": dict(threads)})

    def request_stop(self, reason: str) -> None:
        """The first reason wins: it is the status the solve ends with."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def snapshot(self, known_version: int = -1) -> Snapshot:
        self._maybe_write()
        newer = self._incumbent if self._version > known_version else None
        objective = None if self._incumbent is None else self._incumbent.objective
        return Snapshot(
            self._version, objective, self._bound, self._stop_reason, newer, dict(self._allocation)
        )

    def report(self) -> StoreReport:
        self._maybe_write()
        return StoreReport(
            objective=None if self._incumbent is None else self._incumbent.objective,
            incumbent=self._incumbent,
            bound=self._bound,
            bound_arm=self._bound_arm,
            stop_reason=self._stop_reason,
            version=self._version,
            history=list(self._history),
            bound_history=list(self._bound_history),
            seconds_since_improvement=time.monotonic() - self._last_progress,
            checkpoint_writes=self._writes,
            allocation_history=list(self._allocation_history),
        )

    def flush(self) -> int:
        """Write a pending checkpoint now; returns the number of writes so far."""
        if self._dirty:
            self._write()
        return self._writes

    def _maybe_write(self) -> None:
        checkpoint = self._checkpoint
        if (
            self._dirty
            and checkpoint is not None
            and time.monotonic() - self._last_write >= checkpoint.interval
        ):
            self._write()

    def _write(self) -> None:
        if self._checkpoint is None or self._incumbent is None:
            return
        content = {
            "fingerprint": self._checkpoint.fingerprint,
            "objective": self._incumbent.objective,
            "payload": self._incumbent.payload,
            "arm": self._incumbent.arm,
            "bound": self._bound,
            "written_at": time.time(),
        }
        self._checkpoint.storage.write_text(CHECKPOINT_FILE, json.dumps(content))
        self._last_write = time.monotonic()
        self._dirty = False
        self._writes += 1
