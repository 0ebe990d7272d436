"""The driver side: start the store and the arm actors, enforce the timeouts, collect.

Timeouts, all graceful (the store's stop flag, then the best solution is
returned): ``deadline`` (the solver's time limit or what the total runtime
leaves, whichever ends first; arms also know it), ``no_improvement`` (the
incumbent has not improved by the threshold for that long). An arm whose
actor dies beyond its restarts is dropped; the others go on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from mlray.optimize.arms.base import ArmActor, ArmLimits, ArmSpec, ArmStats
from mlray.optimize.incumbent import CheckpointTarget, Incumbent, IncumbentStore, StoreReport
from mlray.optimize.problems import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PortfolioSettings:
    time_limit: float  # search seconds, counted once every arm is ready
    total_deadline: float | None  # time.monotonic() by which the search must end (total_runtime)
    iteration: float | None
    no_improvement: float | None
    improvement_threshold: float
    sharing: bool
    cpus_per_actor: float
    workers_per_arm: int
    max_restarts: int
    poll_interval: float
    handover_interval: float
    stop_grace: float
    startup_timeout: float = 120.0


@dataclass
class PortfolioOutcome:
    status: str
    report: StoreReport
    arm_stats: list[ArmStats] = field(default_factory=list)
    solve_seconds: float = 0.0


ProgressCallback = Callable[[StoreReport, float], None]


def run_portfolio(
    problem: Problem,
    specs: Sequence[ArmSpec],
    settings: PortfolioSettings,
    *,
    checkpoint: CheckpointTarget | None = None,
    initial: tuple[Incumbent, int | None] | None = None,
    on_progress: ProgressCallback | None = None,
    name_prefix: str = "optimize",
) -> PortfolioOutcome:
    started = time.monotonic()
    store = IncumbentStore.remote(
        checkpoint,
        None if initial is None else initial[0],
        None if initial is None else initial[1],
        settings.improvement_threshold,
    )
    limits = ArmLimits(
        iteration=settings.iteration,
        sharing=settings.sharing,
        cpus=settings.workers_per_arm,
        poll_interval=settings.poll_interval,
        handover_interval=settings.handover_interval,
    )
    actors = {}
    for spec in specs:
        options = {
            "num_cpus": settings.cpus_per_actor,
            "max_restarts": settings.max_restarts,
            "max_task_retries": settings.max_restarts,
            # Unique, so a rerun never collides with the actors of a driver still being torn down.
            "name": f"{name_prefix}.{spec.name}.{uuid.uuid4().hex[:8]}",
        }
        actors[spec.name] = ArmActor.options(**options).remote(problem, spec, store, limits)
    stats: dict[str, ArmStats] = {}
    kinds = {s.name: s.kind for s in specs}
    # The time limit is search time: it starts once every arm has built its model.
    for name, error in _failed_to_start(actors, settings.startup_timeout).items():
        stats[name] = ArmStats(name=name, kind=kinds[name], ended_by="dropped", error=error)
        ray.kill(actors.pop(name), no_restart=True)
    searching_since = time.monotonic()
    seconds, deadline_reason = settings.time_limit, "time_limit"
    if settings.total_deadline is not None and settings.total_deadline - searching_since < seconds:
        seconds, deadline_reason = max(settings.total_deadline - searching_since, 0.0), "total_runtime"
    solve_deadline = searching_since + seconds
    wall_deadline = time.time() + seconds
    store.start_clock.remote()
    pending = {actor.run.remote(wall_deadline): name for name, actor in actors.items()}
    stop_requested_at: float | None = None
    seen_version = -1
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=settings.poll_interval)
        for ref in ready:
            name = pending.pop(ref)
            stats[name] = _collect(ref, name, kinds[name])
        report = ray.get(store.report.remote())
        now = time.monotonic()
        if on_progress is not None and report.version != seen_version:
            seen_version = report.version
            on_progress(report, now - started)
        if report.stop_reason is None:
            reason = _limit_reached(settings, report, now, solve_deadline, deadline_reason)
            if reason is not None:
                store.request_stop.remote(reason)
        elif stop_requested_at is None:
            stop_requested_at = now
        elif now - stop_requested_at > settings.stop_grace:
            for ref, name in pending.items():
                log.warning("arm %s did not stop within %.0f s; killing it", name, settings.stop_grace)
                ray.kill(actors[name], no_restart=True)
                stats[name] = ArmStats(name=name, kind="", ended_by="killed", error="did not stop in time")
            pending.clear()
    ray.get(store.flush.remote())
    report = ray.get(store.report.remote())
    for actor in actors.values():
        ray.kill(actor, no_restart=True)
    ray.kill(store)
    status = _final_status(report, deadline_reason)
    return PortfolioOutcome(
        status, report, [stats[s.name] for s in specs], round(time.monotonic() - searching_since, 3)
    )


def _failed_to_start(actors: dict[str, Any], timeout: float) -> dict[str, str]:
    """Arms that could not build their model, or not within ``timeout``: name -> why."""
    refs = {actor.ready.remote(): name for name, actor in actors.items()}
    done, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    failed = {refs[ref]: f"not ready after {timeout:.0f} s" for ref in late}
    for ref in done:
        try:
            ray.get(ref)
        except (RayActorError, RayTaskError) as exc:
            failed[refs[ref]] = str(exc).splitlines()[0]
            log.warning("arm %s failed to start: %s", refs[ref], failed[refs[ref]])
    return failed


def _collect(ref: ray.ObjectRef, name: str, kind: str) -> ArmStats:
    try:
        return ray.get(ref)
    except (RayActorError, RayTaskError) as exc:
        log.warning("arm %s dropped: %s", name, str(exc).splitlines()[0])
        return ArmStats(name=name, kind=kind, ended_by="dropped", error=str(exc).splitlines()[0])


def _limit_reached(
    settings: PortfolioSettings, report: StoreReport, now: float, deadline: float, deadline_reason: str
) -> str | None:
    if now >= deadline:
        return deadline_reason
    stalled = settings.no_improvement is not None and report.incumbent is not None
    if stalled and report.seconds_since_improvement >= settings.no_improvement:
        return "no_improvement"
    return None


def _final_status(report: StoreReport, deadline_reason: str) -> str:
    if report.incumbent is None:
        return "no_solution"
    if report.bound is not None and report.bound >= report.incumbent.objective:
        return "optimal"
    return report.stop_reason or deadline_reason
