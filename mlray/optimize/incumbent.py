"""The incumbent store: one Ray actor that holds the portfolio's best solution and bound.

Arms publish improving solutions fire-and-forget (``offer.remote``) and poll a
small snapshot; the payload only travels when it is newer than what the
caller already has. When the bound meets the incumbent the store declares the
solve optimal and every arm stops at its next poll.

Every improvement is written to storage (``checkpoint.py``) as JSON (atomically, via
``Storage.open_atomic``), at most once per ``checkpoint_interval`` seconds; a
skipped write is flushed by the next call after the interval, and by
``flush()`` at the end. A rerun with the same run name reads it back with
``load_checkpoint``.

Storage faults never stop the solve. Writes run on the store's own writer
thread (``CheckpointWriter``), so offers and snapshots never wait on storage
(gcsfs retries an unreachable server for about a minute per request): the
in-memory incumbent keeps being served to the arms, a failed write is logged,
kept as an incident in the report and retried after ``retry_interval`` with
the newest content, and a write still unanswered after ``write_timeout`` is
reported as such. When Ray restarts the store (``max_restarts``) it reloads
its last checkpoint, history included; a checkpoint that cannot be read or
parsed is reported and ignored (``CheckpointError``).

Length: the store is one actor class whose methods share its lock, version and incidents; what it writes
(the checkpoint and its writer thread) is already in ``checkpoint.py``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ray

from mlray.optimize.checkpoint import (
    CHECKPOINT_FILE,
    FROM_CHECKPOINT,
    CheckpointError,
    CheckpointTarget,
    CheckpointWriter,
    Incumbent,
    load_checkpoint,
    read_checkpoint,
)

__all__ = [
    "CHECKPOINT_FILE",
    "CheckpointError",
    "CheckpointTarget",
    "CheckpointWriter",
    "Incumbent",
    "IncumbentStore",
    "Snapshot",
    "StoreReport",
    "load_checkpoint",
    "read_checkpoint",
]

log = logging.getLogger(__name__)

@dataclass
class Snapshot:
    """What an arm sees when it polls; ``incumbent`` only when newer than the caller's version."""

    version: int
    objective: int | None
    bound: int | None
    stop_reason: str | None
    incumbent: Incumbent | None = None
    allocation: dict[str, int] = field(default_factory=dict)
    incarnation: str = ""  # changes when Ray restarts the store: versions start over


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
    seconds_since_improvement: float = 0.0  # since the incumbent last got better (by any amount)
    checkpoint_writes: int = 0
    allocation_history: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)  # {"time", "what"}: faults met, recoveries
    checkpoint_pending: bool = False  # the newest incumbent is not (yet) in storage
    incarnation: str = ""
    restarted: bool = False  # this incarnation was started by Ray after the store died
    restored_from: int | None = None  # objective reloaded from the checkpoint after a restart
    arm_nodes: dict[str, str] = field(default_factory=dict)  # arm -> Ray node id (hex) its actor runs on
    arm_silence: dict[str, float] = field(default_factory=dict)  # arm -> seconds since it last polled
    node_id: str = ""  # the Ray node the store runs on (hex)


@ray.remote(num_cpus=0)
class IncumbentStore:
    def __init__(
        self,
        checkpoint: CheckpointTarget | None = None,
        initial: Incumbent | None = None,
        initial_bound: int | None = None,
    ) -> None:
        self._started = time.monotonic()
        self._checkpoint = checkpoint
        self._incumbent: Incumbent | None = None
        self._version = 0
        self._incarnation = uuid.uuid4().hex[:8]
        self._bound: int | None = None
        self._bound_arm: str | None = None
        self._stop_reason: str | None = None
        self._history: list[dict[str, Any]] = []
        self._bound_history: list[dict[str, Any]] = []
        self._last_improvement = self._started  # for the report (a gauge); no_improvement is the driver's
        self._last_write = float("-inf")
        self._dirty = False
        self._allocation: dict[str, int] = {}
        self._allocation_history: list[dict[str, Any]] = []
        self._incidents: list[dict[str, Any]] = []
        self._incidents_lock = threading.Lock()
        # Where each arm runs and when it last polled: the driver tells a lost arm (its node gone, its
        # actor waiting for a restart that may never come) from a busy one by its silence.
        self._arm_nodes: dict[str, str] = {}
        self._arm_seen: dict[str, float] = {}
        self._node_id = ray.get_runtime_context().get_node_id()
        self._restored_from: int | None = None
        self._restarted = _restarted_by_ray()
        self._writer = None if checkpoint is None else CheckpointWriter(checkpoint, self._record_incident)
        if checkpoint is not None and self._restarted:
            self._restore(checkpoint)
        if initial is not None:
            self.offer(initial.objective, initial.payload, initial.arm)
        if initial_bound is not None:
            self.offer_bound(initial_bound, FROM_CHECKPOINT)

    def _record_incident(self, what: str) -> None:
        log.warning("incumbent store: %s", what)
        with self._incidents_lock:
            self._incidents.append({"time": round(self._elapsed(), 4), "what": what})

    def _restore(self, checkpoint: CheckpointTarget) -> None:
        """After a restart: carry on from the last checkpoint, unless it cannot be read in time."""
        reader = ThreadPoolExecutor(max_workers=1)
        pending = reader.submit(read_checkpoint, checkpoint.storage, checkpoint.fingerprint)
        reader.shutdown(wait=False)
        try:
            content = pending.result(timeout=checkpoint.write_timeout)
        except TimeoutError:
            self._record_incident(
                f"restarted; checkpoint not readable within {checkpoint.write_timeout:g} s, "
                "going on from the arms' incumbents"
            )
            return
        except CheckpointError as exc:
            self._record_incident(f"restarted; {exc}; ignored, going on from the arms' incumbents")
            return
        if content is None:
            self._record_incident("restarted; no checkpoint yet, going on from the arms' incumbents")
            return
        lag = max(0.0, time.time() - float(content.get("written_at", time.time())))
        self._started = time.monotonic() - float(content.get("elapsed", 0.0)) - lag
        self._incumbent = Incumbent(content["objective"], content["payload"], content["arm"])
        self._version = 1
        self._bound, self._bound_arm = content.get("bound"), content.get("bound_arm")
        self._history = list(content.get("history", []))
        self._bound_history = list(content.get("bound_history", []))
        self._incidents = list(content.get("incidents", []))
        self._restored_from = self._incumbent.objective
        self._record_incident(
            f"restarted by Ray; restored objective {self._incumbent.objective} "
            f"(by {self._incumbent.arm}) from the checkpoint"
        )

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def offer(self, objective: int, payload: dict[str, Any], arm: str) -> bool:
        """Keep the solution if it is strictly better; True when it was."""
        if self._incumbent is not None and objective >= self._incumbent.objective:
            return False
        self._incumbent = Incumbent(objective, payload, arm)
        self._version += 1
        self._history.append({"time": round(self._elapsed(), 4), "objective": objective, "arm": arm})
        self._last_improvement = time.monotonic()
        self._check_optimal()
        self._dirty = True
        self._maybe_write()
        return True

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

    def arm_started(self, arm: str, node_id: str) -> None:
        """An arm's actor (re)started on ``node_id``. Its silence counts from its first poll, not from here:
        the others may still be building their models, and no arm polls before the search starts."""
        self._arm_nodes[arm] = node_id

    def snapshot(
        self, known_version: int = -1, incarnation: str | None = None, arm: str | None = None
    ) -> Snapshot:
        """``incarnation``: the one the caller's version came from; another one means the store
        restarted since, so the caller's version says nothing and the incumbent is sent.
        ``arm``: the polling arm, counted as alive now."""
        if arm is not None:
            self._arm_seen[arm] = time.monotonic()
        self._maybe_write()
        if incarnation is not None and incarnation != self._incarnation:
            known_version = -1
        newer = self._incumbent if self._version > known_version else None
        objective = None if self._incumbent is None else self._incumbent.objective
        return Snapshot(
            self._version,
            objective,
            self._bound,
            self._stop_reason,
            newer,
            dict(self._allocation),
            self._incarnation,
        )

    def report(self) -> StoreReport:
        self._maybe_write()
        with self._incidents_lock:
            incidents = list(self._incidents)
        return StoreReport(
            objective=None if self._incumbent is None else self._incumbent.objective,
            incumbent=self._incumbent,
            bound=self._bound,
            bound_arm=self._bound_arm,
            stop_reason=self._stop_reason,
            version=self._version,
            history=list(self._history),
            bound_history=list(self._bound_history),
            seconds_since_improvement=time.monotonic() - self._last_improvement,
            checkpoint_writes=0 if self._writer is None else self._writer.writes,
            allocation_history=list(self._allocation_history),
            incidents=incidents,
            checkpoint_pending=self._writer is not None and (self._dirty or self._writer.busy),
            incarnation=self._incarnation,
            restarted=self._restarted,
            restored_from=self._restored_from,
            arm_nodes=dict(self._arm_nodes),
            arm_silence={arm: round(time.monotonic() - seen, 3) for arm, seen in self._arm_seen.items()},
            node_id=self._node_id,
        )

    def flush(self) -> int:
        """Write a pending checkpoint now and wait for it (up to ``write_timeout``);
        returns the number of successful writes so far."""
        if self._writer is None:
            return 0
        if self._dirty:
            self._submit()
        if not self._writer.wait_idle(self._writer.target.write_timeout):
            self._writer.check_stalled()
        return self._writer.writes

    def _maybe_write(self) -> None:
        if self._writer is None:
            return
        self._writer.check_stalled()
        if self._dirty and time.monotonic() - self._last_write >= self._writer.target.interval:
            self._submit()

    def _submit(self) -> None:
        assert self._writer is not None and self._checkpoint is not None
        self._dirty = False
        if self._incumbent is None:
            return
        self._last_write = time.monotonic()
        with self._incidents_lock:
            incidents = list(self._incidents)
        self._writer.submit(
            {
                "fingerprint": self._checkpoint.fingerprint,
                "objective": self._incumbent.objective,
                "payload": self._incumbent.payload,
                "arm": self._incumbent.arm,
                "bound": self._bound,
                "bound_arm": self._bound_arm,
                "history": list(self._history),
                "bound_history": list(self._bound_history),
                "incidents": incidents,
                "elapsed": round(self._elapsed(), 4),
                "written_at": time.time(),
            }
        )


def _restarted_by_ray() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # raised by Ray's own property
        return ray.get_runtime_context().was_current_actor_reconstructed


