"""An arm's link to the incumbent store: what it is held to (``ArmLimits``) and ``StoreLink``, through
which it polls the store, publishes improvements and asks whether to end its round early."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from mlray.config.optimize import SolverSection
from mlray.optimize.checkpoint import Incumbent

log = logging.getLogger(__name__)

SNAPSHOT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ArmLimits:
    """What every arm of a solve is held to: the ``solver`` section as configured (sharing, intervals),
    the round limit (``timeouts.round``) and the initial threads per arm."""

    solver: SolverSection
    round_limit: float | None  # seconds one round may take (timeouts.round)
    cpus: int
    observed: Any = None  # mlray.metrics.optimize.OptimizeMetrics: records each round

    @property
    def sharing(self) -> bool:
        return self.solver.sharing

    @property
    def poll_interval(self) -> float:
        return self.solver.poll_interval

    @property
    def handover_interval(self) -> float:
        return self.solver.handover_interval


class StoreLink:
    """An arm's view of the incumbent store, safe to use from solver threads."""

    def __init__(self, store: Any, arm_name: str, limits: ArmLimits, receive: bool = True) -> None:
        self.store = store
        self.arm_name = arm_name
        self.limits = limits
        self.receives = limits.sharing and receive  # starts rounds from other arms' incumbents
        self._lock = threading.Lock()
        self._last_poll = float("-inf")
        self.version = -1
        self.incarnation: str | None = None  # of the store the version came from
        self.global_incumbent: Incumbent | None = None
        self.stop_reason: str | None = None
        self.own_best: Incumbent | None = None
        self.improvements = 0
        self.round_best: int | None = None
        self.round_started = time.monotonic()
        self.last_round_progress = self.round_started
        self.threads: int | None = None  # allotted by the store; None = the arm's initial share
        self.round_threads: int | None = None
        self.deadline = math.inf  # wall clock (time.time()), so a restarted actor keeps the original end

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last_poll < self.limits.poll_interval:
                return
            self._last_poll = now
        try:
            snapshot = ray.get(
                self.store.snapshot.remote(self.version, self.incarnation, self.arm_name),
                timeout=SNAPSHOT_TIMEOUT_S,
            )
        except (GetTimeoutError, RayActorError) as exc:
            # The store is restarting (or gone): search on with what this arm has; its deadline still holds.
            log.warning(
                "arm %s: incumbent store not answering (%s); going on", self.arm_name, type(exc).__name__
            )
            return
        with self._lock:
            self.stop_reason = snapshot.stop_reason
            self.threads = snapshot.allocation.get(self.arm_name, self.threads)
            self.incarnation = snapshot.incarnation
            if snapshot.incumbent is not None:
                self.version = snapshot.version
                # A restarted store may hold less than this arm has already seen.
                known = self.global_incumbent
                if known is None or snapshot.incumbent.objective <= known.objective:
                    self.global_incumbent = snapshot.incumbent
            own = self.own_best
        if own is not None and (snapshot.objective is None or snapshot.objective > own.objective):
            # The store lost this arm's best (it restarted from an older checkpoint): offer it again.
            self.store.offer.remote(own.objective, own.payload, own.arm)

    def begin_round(self, start: Incumbent | None, threads: int | None = None) -> None:
        with self._lock:
            self.round_best = None if start is None else start.objective
            self.round_started = time.monotonic()
            self.last_round_progress = self.round_started
            self.round_threads = threads

    def publish(self, objective: int, payload: dict[str, Any]) -> bool:
        """Offer a solution found by this arm (fire-and-forget) when it beats the arm's own best."""
        with self._lock:
            if self.round_best is None or objective < self.round_best:
                self.round_best = objective
                self.last_round_progress = time.monotonic()
            if self.own_best is not None and objective >= self.own_best.objective:
                return False
            self.own_best = Incumbent(objective, payload, self.arm_name)
            self.improvements += 1
        self.store.offer.remote(objective, payload, self.arm_name)
        return True

    def publish_bound(self, bound: int) -> None:
        self.store.offer_bound.remote(bound, self.arm_name)

    def past_deadline(self) -> bool:
        return time.time() >= self.deadline

    def should_stop_round(self) -> bool:
        """Stop the running round: the solve is over, its thread allotment changed, or (when
        sharing) a better outside incumbent is waiting and this round has not improved for
        ``handover_interval`` seconds (cutting a search that still progresses costs more than it brings)."""
        self.refresh()
        if self.stop_reason is not None or self.past_deadline() or self.threads != self.round_threads:
            return True
        if not self.receives or self.global_incumbent is None:
            return False
        with self._lock:
            outside_better = self.round_best is None or self.global_incumbent.objective < self.round_best
            return (
                outside_better
                and time.monotonic() - self.last_round_progress >= self.limits.handover_interval
            )
