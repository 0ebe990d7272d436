"""The portfolio's driver as a state machine: starting -> racing -> focused -> stopping -> done.

``starting``: the incumbent store and one actor per arm are started and each builds its model (an arm
that cannot, or not within ``startup_timeout``, is dropped); the search time starts once all are ready.
``racing``: the arms search on equal threads. ``focused``: the CPU split policy (``cpu_split.py``) has
moved the threads, to the leader by default; it may re-split as arms end or are lost. ``stopping``: a
stopping rule fired (the store's stop flag is up); arms get ``stop_grace`` to return, a lost arm is
killed at once (it cannot hear the stop). ``done``: every arm returned or was killed; the actors are
gone and the outcome is collected. A stop may come while racing: ``focused`` is then skipped; and arms
that all return at the search deadline before a poll sees the stop flag go straight to ``done``.

Each poll (``solver.poll_interval``) collects returned arms, reads the store's report, tracks arms
gone silent (``portfolio.track_lost``), asks the split policy, reports progress and metrics, then asks
the stopping rules (``stopping.py``) with the incumbent: the one that fires is the status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from enum import Enum
from typing import Any

import ray

from mlray.metrics.optimize import OptimizeMetrics
from mlray.optimize.arms.base import ArmSpec, ArmStats, arm_class_of, count_given
from mlray.optimize.cpu_split import CpuSplit, RaceThenFocus
from mlray.optimize.incumbent import CheckpointTarget, Incumbent, StoreReport
from mlray.optimize.portfolio import (
    PortfolioOutcome,
    PortfolioSettings,
    ProgressCallback,
    StoreWatch,
    collect,
    failed_to_start,
    final_status,
    start_arms,
    start_store,
    track_lost,
)

log = logging.getLogger(__name__)


class SolveState(str, Enum):
    STARTING = "starting"
    RACING = "racing"
    FOCUSED = "focused"
    STOPPING = "stopping"
    DONE = "done"


class PortfolioController:
    """One solve's driver; ``run()`` once. ``transitions``: (seconds since the start, state) per change."""

    def __init__(
        self,
        problem: Any,
        specs: Sequence[ArmSpec],
        settings: PortfolioSettings,
        *,
        checkpoint: CheckpointTarget | None = None,
        initial: tuple[Incumbent, int | None] | None = None,
        on_progress: ProgressCallback | None = None,
        name_prefix: str = "optimize",
        observed: OptimizeMetrics | None = None,
        split: CpuSplit | None = None,
    ) -> None:
        self.problem, self.specs, self.settings = problem, list(specs), settings
        self.checkpoint, self.initial, self.on_progress = checkpoint, initial, on_progress
        self.name_prefix, self.observed = name_prefix, observed
        self.kinds = {s.name: s.kind for s in self.specs}
        self.split = split or RaceThenFocus(
            [s.name for s in self.specs],
            {s.name: arm_class_of(s).thread_cap(s) for s in self.specs},
            settings.workers_per_arm * len(self.specs),
            settings.solver.race_fraction,
        )
        self.current = {s.name: settings.workers_per_arm for s in self.specs}  # threads per arm now
        self.stats: dict[str, ArmStats] = {}
        self.lost: set[str] = set()  # running arms silent for more than lost_after seconds
        self.watch = StoreWatch()
        self.started = time.monotonic()
        self.state = SolveState.STARTING
        self.transitions: list[tuple[float, SolveState]] = [(0.0, self.state)]
        self.stop_requested_at: float | None = None
        self.seen_version = -1

    def enter(self, state: SolveState) -> None:
        if state != self.state:
            log.debug("portfolio: %s -> %s", self.state.value, state.value)
            self.state = state
            self.transitions.append((round(time.monotonic() - self.started, 3), state))

    def run(self) -> PortfolioOutcome:
        settings = self.settings
        self.store = start_store(settings, self.checkpoint, self.initial, self.name_prefix)
        self.actors = start_arms(
            self.problem, self.specs, settings, self.store, self.observed, self.name_prefix
        )
        # The time limit is search time: it starts once every arm has built its model.
        for name, error in failed_to_start(self.actors, settings.startup_timeout).items():
            self.stats[name] = ArmStats(name=name, kind=self.kinds[name], ended_by="dropped", error=error)
            ray.kill(self.actors.pop(name), no_restart=True)
        self.searching_since = time.monotonic()
        seconds, self.deadline_reason = settings.stopping.search_seconds(self.searching_since)
        self.stops = settings.stopping.criteria(self.searching_since)
        self.split.begin(self.searching_since, seconds)
        wall_deadline = time.time() + seconds
        self.pending = {actor.run.remote(wall_deadline): name for name, actor in self.actors.items()}
        self.enter(SolveState.RACING)
        while self.pending:
            self.poll()
        return self.finish()

    def poll(self) -> None:
        settings = self.settings
        ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=settings.solver.poll_interval)
        for ref in ready:
            name = self.pending.pop(ref)
            self.stats[name] = collect(ref, name, self.kinds[name])
        report = self.watch.report(self.store)
        now = time.monotonic()
        self.lost = track_lost(report, set(self.pending.values()), self.lost, settings.solver.lost_after,
                               self.watch, now - self.started)
        self.resplit(report, now)
        if self.observed is not None:
            self.observed.report(report, self.current, self.stats)
        if self.on_progress is not None and report.version != self.seen_version:
            self.seen_version = report.version
            self.on_progress(report, now - self.started)
        if report.stop_reason is None:
            reason = self.stops.reason(report.objective)
            if reason is not None:
                self.store.request_stop.remote(reason)
        else:
            self.stop_arms(report, now)

    def resplit(self, report: StoreReport, now: float) -> None:
        """Ask the split policy; arms that ended normally (time up, optimal) stay in: only a dropped or
        lost arm's CPUs move on."""
        dropped = {name for name, stats in self.stats.items() if stats.ended_by == "dropped"}
        live = {name for name in self.actors if name not in self.lost and name not in dropped}
        threads = self.split.decide(report.history, live, now)
        if self.split.focused and self.state == SolveState.RACING:
            self.enter(SolveState.FOCUSED)
        if threads is not None and any(self.current[name] != count for name, count in threads.items()):
            log.info("threads per arm from now on: %s", threads)
            self.current.update(threads)
            self.store.set_allocation.remote(threads)

    def stop_arms(self, report: StoreReport, now: float) -> None:
        """The stop flag is up: lost arms are killed at once, the others after ``stop_grace``."""
        self.enter(SolveState.STOPPING)
        grace = self.settings.solver.stop_grace
        if self.stop_requested_at is None:
            self.stop_requested_at = now
        overdue = now - self.stop_requested_at > grace
        for ref, name in list(self.pending.items()):
            if name in self.lost:  # it cannot hear the stop: no grace to wait out
                silence = report.arm_silence.get(name, 0.0)
                error = f"lost: no poll for {silence:.1f} s (its node or process gone)"
                self.stats[name] = ArmStats(name=name, kind=self.kinds[name], ended_by="lost", error=error)
            elif overdue:
                log.warning("arm %s did not stop within %.0f s; killing it", name, grace)
                self.stats[name] = ArmStats(
                    name=name, kind="", ended_by="killed", error="did not stop in time"
                )
            else:
                continue
            ray.kill(self.actors[name], no_restart=True)
            del self.pending[ref]

    def finish(self) -> PortfolioOutcome:
        self.watch.flush(self.store)
        report = self.watch.report(self.store)
        if self.observed is not None:
            self.observed.report(report, self.current, self.stats)
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)
        ray.kill(self.store, no_restart=True)
        self.enter(SolveState.DONE)
        arm_stats = [self.stats[s.name] for s in self.specs]
        for arm in arm_stats:
            arm.node_id = report.arm_nodes.get(arm.name)
        count_given(arm_stats)
        return PortfolioOutcome(
            final_status(report, self.deadline_reason),
            report,
            arm_stats,
            round(time.monotonic() - self.searching_since, 3),
            store_restarts=self.watch.restarts,
            states=[state.value for _, state in self.transitions],
        )


def run_portfolio(
    problem: Any, specs: Sequence[ArmSpec], settings: PortfolioSettings, **options: Any
) -> PortfolioOutcome:
    """One solve by a ``PortfolioController`` (keyword options as its constructor's)."""
    return PortfolioController(problem, specs, settings, **options).run()
