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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ray
from ray.exceptions import RayActorError, RayTaskError

from mlray.optimize.arms.base import ArmActor, ArmLimits, ArmSpec, ArmStats
from mlray.optimize.incumbent import CheckpointTarget, Incumbent, IncumbentStore, StoreReport
from mlray.optimize.problems import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PortfolioSettings:
    solve_seconds: float
    deadline_reason: str  # "time_limit" or "total_runtime": which limit the deadline comes from
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
    actor_name_prefix: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> PortfolioOutcome:
    started = time.monotonic()
    store = IncumbentStore.remote(
        checkpoint,
        None if initial is None else initial[0],
        None if initial is None else initial[1],
        settings.improvement_threshold,
    )
    limits = ArmLimits(
        deadline=time.time() + settings.solve_seconds,
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
        }
        if actor_name_prefix:
            options["name"] = f"{actor_name_prefix}-{spec.name}"
        actors[spec.name] = ArmActor.options(**options).remote(problem, spec, store, limits)
    pending = {actor.run.remote(): name for name, actor in actors.items()}
    stats: dict[str, ArmStats] = {}
    solve_deadline = started + settings.solve_seconds
    stop_requested_at: float | None = None
    seen_version = -1
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=settings.poll_interval)
        for ref in ready:
            name = pending.pop(ref)
            stats[name] = _collect(ref, name, next(s.kind for s in specs if s.name == name))
        report = ray.get(store.report.remote())
        now = time.monotonic()
        if on_progress is not None and report.version != seen_version:
            seen_version = report.version
            on_progress(report, now - started)
        if report.stop_reason is None:
            reason = _limit_reached(settings, report, now, solve_deadline)
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
    status = _final_status(report, settings)
    return PortfolioOutcome(status, report, [stats[s.name] for s in specs], round(time.monotonic() - started, 3))


def _collect(ref: ray.ObjectRef, name: str, kind: str) -> ArmStats:
    try:
        return ray.get(ref)
    except (RayActorError, RayTaskError) as exc:
        log.warning("arm %s dropped: %s", name, str(exc).splitlines()[0])
        return ArmStats(name=name, kind=kind, ended_by="dropped", error=str(exc).splitlines()[0])


def _limit_reached(settings: PortfolioSettings, report: StoreReport, now: float, deadline: float) -> str | None:
    if now >= deadline:
        return settings.deadline_reason
    if settings.no_improvement is not None and report.incumbent is not None:
        if report.seconds_since_improvement >= settings.no_improvement:
            return "no_improvement"
    return None


def _final_status(report: StoreReport, settings: PortfolioSettings) -> str:
    if report.incumbent is None:
        return "no_solution"
    if report.bound is not None and report.bound >= report.incumbent.objective:
        return "optimal"
    return report.stop_reason or settings.deadline_reason
