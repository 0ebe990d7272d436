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

Storage faults never stop the solve. Writes run on the store's own writer
thread (``CheckpointWriter``), so offers and snapshots never wait on storage
(gcsfs retries an unreachable server for about a minute per request): the
in-memory incumbent keeps being served to the arms, a failed write is logged,
kept as an incident in the report and retried after ``retry_interval`` with
the newest content, and a write still unanswered after ``write_timeout`` is
reported as such. When Ray restarts the store (``max_restarts``) it reloads
its last checkpoint, history included; a checkpoint that cannot be read or
parsed is reported and ignored (``CheckpointError``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ray

from mlray.storage import Storage

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "incumbent.json"
FROM_CHECKPOINT = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be used (unreadable, truncated, or not a checkpoint)."""


@dataclass(frozen=True)
class Incumbent:
    objective: int
    payload: dict[str, Any]
    arm: str


@dataclass(frozen=True)
class CheckpointTarget:
    storage: Storage
    fingerprint: str
    interval: float  # seconds between writes at most
    write_timeout: float  # seconds before an unanswered write is reported (it goes on in the background)
    retry_interval: float  # seconds before a failed write is tried again


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


def read_checkpoint(storage: Storage, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint's content when one exists for this very problem.

    Raises ``CheckpointError`` when it exists but cannot be read or parsed.
    """
    url = storage.url(CHECKPOINT_FILE)
    try:
        if not storage.exists(CHECKPOINT_FILE):
            return None
        text = storage.read_text(CHECKPOINT_FILE)
    except Exception as exc:  # noqa: BLE001 - local and GCS backends raise assorted errors
        raise CheckpointError(f"checkpoint {url}: unreadable: {_first_line(exc)}") from None
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(
            f"checkpoint {url}: not valid JSON (truncated or damaged, {len(text)} bytes): {exc}"
        ) from None
    if not isinstance(content, dict):
        raise CheckpointError(f"checkpoint {url}: expected a JSON object, got {type(content).__name__}")
    if content.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s is for another problem; ignored", url)
        return None
    for key, expected in (("objective", int), ("payload", dict), ("arm", str)):
        if not isinstance(content.get(key), expected) or isinstance(content.get(key), bool):
            raise CheckpointError(
                f"checkpoint {url}: {key}: expected {expected.__name__}, got {content.get(key)!r:.80}"
            )
    if content.get("bound") is not None and not isinstance(content["bound"], int):
        raise CheckpointError(
            f"checkpoint {url}: bound: expected an integer or null, got {content['bound']!r:.80}"
        )
    return content


def load_checkpoint(storage: Storage, fingerprint: str) -> tuple[Incumbent, int | None] | None:
    """The checkpointed incumbent and bound, if one exists for this very problem."""
    content = read_checkpoint(storage, fingerprint)
    if content is None:
        return None
    return Incumbent(content["objective"], content["payload"], FROM_CHECKPOINT), content.get("bound")


class CheckpointWriter:
    """Writes checkpoints on its own thread, always the newest content, so the store never waits."""

    def __init__(self, target: CheckpointTarget, incident: Callable[[str], None]) -> None:
        self.target = target
        self.url = target.storage.url(CHECKPOINT_FILE)
        self._incident = incident
        self._changed = threading.Condition()
        self._pending: dict[str, Any] | None = None
        self._writing_since: float | None = None
        self._stall_reported = False
        self._retry_at = 0.0
        self._failed_attempts = 0  # since the last successful write
        self.writes = 0
        threading.Thread(target=self._run, name="checkpoint-writer", daemon=True).start()

    def submit(self, content: dict[str, Any]) -> None:
        with self._changed:
            self._pending = content
            self._changed.notify_all()

    @property
    def busy(self) -> bool:
        return self._pending is not None or self._writing_since is not None

    def check_stalled(self) -> None:
        with self._changed:
            since = self._writing_since
            if since is None or self._stall_reported or time.monotonic() - since < self.target.write_timeout:
                return
            self._stall_reported = True
            self._failed_attempts += 1
        self._incident(
            f"checkpoint write to {self.url} unanswered after {self.target.write_timeout:g} s; "
            "still trying in the background, the solve goes on"
        )

    def wait_idle(self, timeout: float) -> bool:
        """Write what is pending now (no retry delay) and wait up to ``timeout`` s; True if all is written."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._retry_at = 0.0
            self._changed.notify_all()
            while self.busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._pending is None or time.monotonic() < self._retry_at:
                    self._changed.wait(None if self._pending is None else self._retry_at - time.monotonic())
                content, self._pending = self._pending, None
                self._writing_since, self._stall_reported = time.monotonic(), False
            try:
                self.target.storage.write_text(CHECKPOINT_FILE, json.dumps(content))
            except Exception as exc:  # noqa: BLE001 - any storage error: keep serving, retry later
                with self._changed:
                    if not self._stall_reported:  # an unanswered attempt was counted already
                        self._failed_attempts += 1
                    if self._pending is None:  # nothing newer came in meanwhile: retry this one
                        self._pending = content
                    self._retry_at = time.monotonic() + self.target.retry_interval
                self._incident(
                    f"checkpoint write to {self.url} failed ({_first_line(exc)}); "
                    f"retrying in {self.target.retry_interval:g} s, the solve goes on"
                )
            else:
                with self._changed:
                    self.writes += 1
                    recovered, self._failed_attempts = self._failed_attempts, 0
                if recovered:
                    self._incident(
                        f"checkpoint written to {self.url} again (objective {content['objective']}) "
                        f"after {recovered} failed or unanswered attempt(s)"
                    )
            finally:
                with self._changed:
                    self._writing_since = None
                    self._changed.notify_all()


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
