"""The driver side: start the store and the arm actors, enforce the timeouts, collect.

Timeouts: the rules of ``mlray.optimize.stopping`` (the search deadline, which
the arms also know, and ``no_improvement``), asked at every poll with the
incumbent; the one that fires is the status. An arm whose actor dies beyond its
restarts is dropped; the others go on.

Node loss: the store is pinned to the head node, so the incumbent outlives any
worker node. An arm that has not polled the store for ``lost_after`` seconds
(its node gone, its actor dead or waiting for a restart that finds no room)
counts as lost: its CPUs go to the others as for a dropped arm, it is taken
back if it polls again, and it is killed at once when the solve stops (it
cannot hear the stop).

CPUs: every arm starts with an equal share of solver threads (a race). After
``race_fraction`` of the search time the threads go to the leading arm (the one
holding the best incumbent), up to what it can use (``Arm.thread_cap``: CP-SAT
any number, PyVRP and OR-Tools routing one), the rest to the next arms in rank;
an arm left with none parks. The total never exceeds the race's, so the
portfolio uses the CPUs it was given, no more. The split is redone when an arm
ends or is dropped.
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from mlray.cluster.runtime import worker_env_vars
from mlray.metrics.optimize import OptimizeMetrics
from mlray.optimize.arms.base import ArmActor, ArmLimits, ArmSpec, ArmStats, arm_class_of, count_given
from mlray.optimize.incumbent import CheckpointTarget, Incumbent, IncumbentStore, StoreReport
from mlray.optimize.problems import Problem
from mlray.optimize.stopping import SearchStopping

log = logging.getLogger(__name__)
INLINE_ARGUMENT_BYTES = 100 * 1024  # Ray passes larger arguments through the object store anyway
# Every Ray head node has this resource (Ray's own Train state actor is pinned with it): a tiny share
# keeps the store on the head, whichever worker nodes come and go.
HEAD_NODE_RESOURCE = "node:__internal_head__"


@dataclass(frozen=True)
class PortfolioSettings:
    stopping: SearchStopping
    sharing: bool
    cpus_per_actor: float
    workers_per_arm: int
    max_restarts: int
    poll_interval: float
    handover_interval: float
    stop_grace: float
    lost_after: float  # seconds without a poll from an arm before its CPUs go to the others
    race_fraction: float = 1.0  # of the search time before the CPUs go to the leader; 1 = never
    startup_timeout: float = 120.0
    store_max_restarts: int = 0  # Ray restarts of the incumbent store; it reloads its checkpoint


@dataclass
class PortfolioOutcome:
    status: str
    report: StoreReport
    arm_stats: list[ArmStats] = field(default_factory=list)
    solve_seconds: float = 0.0
    store_restarts: int = 0


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
    observed: OptimizeMetrics | None = None,
) -> PortfolioOutcome:
    started = time.monotonic()
    store = IncumbentStore.options(
        max_restarts=settings.store_max_restarts,
        max_task_retries=settings.store_max_restarts,
        name=f"{name_prefix}.incumbent-store.{uuid.uuid4().hex[:8]}",
        resources={HEAD_NODE_RESOURCE: 0.001},
        # The store writes where this driver reads checkpoints back (e.g. the GCS endpoint it uses now).
        runtime_env={"env_vars": worker_env_vars()},
    ).remote(
        checkpoint,
        None if initial is None else initial[0],
        None if initial is None else initial[1],
    )
    limits = ArmLimits(
        round_limit=settings.stopping.round_limit,
        sharing=settings.sharing,
        cpus=settings.workers_per_arm,
        poll_interval=settings.poll_interval,
        handover_interval=settings.handover_interval,
        observed=observed,
    )
    actors = {}
    # A large problem goes once into the object store, not once per actor (a 1,000-customer matrix pickles
    # to about 3 MB). A small one travels inline: Ray logs an error-level caveat for every actor whose
    # constructor takes an object-store argument (the driver holds it for the whole solve, so it stays).
    large = len(pickle.dumps(problem)) > INLINE_ARGUMENT_BYTES
    shared_problem = ray.put(problem) if large else problem
    for spec in specs:
        options = {
            "num_cpus": settings.cpus_per_actor,
            "max_restarts": settings.max_restarts,
            "max_task_retries": settings.max_restarts,
            # Unique, so a rerun never collides with the actors of a driver still being torn down.
            "name": f"{name_prefix}.{spec.name}.{uuid.uuid4().hex[:8]}",
        }
        actors[spec.name] = ArmActor.options(**options).remote(shared_problem, spec, store, limits)
    stats: dict[str, ArmStats] = {}
    kinds = {s.name: s.kind for s in specs}
    # The time limit is search time: it starts once every arm has built its model.
    for name, error in _failed_to_start(actors, settings.startup_timeout).items():
        stats[name] = ArmStats(name=name, kind=kinds[name], ended_by="dropped", error=error)
        ray.kill(actors.pop(name), no_restart=True)
    searching_since = time.monotonic()
    seconds, deadline_reason = settings.stopping.search_seconds(searching_since)
    stops = settings.stopping.criteria(searching_since)
    wall_deadline = time.time() + seconds
    pending = {actor.run.remote(wall_deadline): name for name, actor in actors.items()}
    caps = {s.name: arm_class_of(s).thread_cap(s) for s in specs}
    total_threads = settings.workers_per_arm * len(specs)
    race_end = searching_since + settings.race_fraction * seconds
    allocated_for: set[str] | None = None  # the arms the current split was made for
    current = {s.name: settings.workers_per_arm for s in specs}
    stop_requested_at: float | None = None
    seen_version = -1
    watch = StoreWatch()
    lost: set[str] = set()  # running arms silent for more than lost_after seconds
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=settings.poll_interval)
        for ref in ready:
            name = pending.pop(ref)
            stats[name] = _collect(ref, name, kinds[name])
        report = watch.report(store)
        now = time.monotonic()
        lost = _track_lost(report, set(pending.values()), lost, settings.lost_after, watch, now - started)
        # Arms that ended normally (time up, optimal) stay in: only a dropped or lost arm's CPUs move on.
        live = {
            name
            for name in actors
            if name not in lost and (stats.get(name) is None or stats[name].ended_by != "dropped")
        }
        # The race goes on until someone leads; once split, a dropped or lost arm re-splits.
        leads = allocated_for is not None or any(h["arm"] in live for h in report.history)
        if settings.race_fraction < 1 and now >= race_end and leads and allocated_for != live:
            allocated_for = live
            names = [s.name for s in specs if s.name in live]
            threads = allocate(report.history, names, caps, total_threads)
            if any(current[name] != count for name, count in threads.items()):
                log.info("threads per arm from now on: %s", threads)
                current.update(threads)
                store.set_allocation.remote(threads)
        if observed is not None:
            observed.report(report, current, stats)
        if on_progress is not None and report.version != seen_version:
            seen_version = report.version
            on_progress(report, now - started)
        if report.stop_reason is None:
            reason = stops.reason(report.objective)
            if reason is not None:
                store.request_stop.remote(reason)
        else:
            if stop_requested_at is None:
                stop_requested_at = now
            overdue = now - stop_requested_at > settings.stop_grace
            for ref, name in list(pending.items()):
                if name in lost:  # it cannot hear the stop: no grace to wait out
                    silence = report.arm_silence.get(name, 0.0)
                    error = f"lost: no poll for {silence:.1f} s (its node or process gone)"
                    stats[name] = ArmStats(name=name, kind=kinds[name], ended_by="lost", error=error)
                elif overdue:
                    log.warning("arm %s did not stop within %.0f s; killing it", name, settings.stop_grace)
                    stats[name] = ArmStats(
                        name=name, kind="", ended_by="killed", error="did not stop in time"
                    )
                else:
                    continue
                ray.kill(actors[name], no_restart=True)
                del pending[ref]
    watch.flush(store)
    report = watch.report(store)
    if observed is not None:
        observed.report(report, current, stats)
    for actor in actors.values():
        ray.kill(actor, no_restart=True)
    ray.kill(store, no_restart=True)
    status = _final_status(report, deadline_reason)
    arm_stats = [stats[s.name] for s in specs]
    for arm in arm_stats:
        arm.node_id = report.arm_nodes.get(arm.name)
    count_given(arm_stats)
    return PortfolioOutcome(
        status,
        report,
        arm_stats,
        round(time.monotonic() - searching_since, 3),
        store_restarts=watch.restarts,
    )


class StoreWatch:
    """The driver's calls to the store: counts its restarts (incarnations started by Ray), keeps every
    incident any incarnation reported, and falls back to the last report if the store is gone for good."""

    def __init__(self) -> None:
        self.last: StoreReport | None = None
        self.restarted_incarnations: set[str] = set()
        self.incidents: list[dict[str, Any]] = []

    @property
    def restarts(self) -> int:
        return len(self.restarted_incarnations)

    def report(self, store: Any) -> StoreReport:
        try:
            report = ray.get(store.report.remote())
        except RayActorError as exc:
            if self.last is None:
                raise
            self.note(f"incumbent store lost beyond its restarts ({str(exc).splitlines()[0]}); "
                      "the result is its last report")
            self.last.incidents = list(self.incidents)
            return self.last
        if report.restarted:
            self.restarted_incarnations.add(report.incarnation)
        for incident in report.incidents:
            if incident not in self.incidents:
                log.warning("incumbent store: %s", incident["what"])
                self.incidents.append(incident)
        report.incidents = list(self.incidents)
        self.last = report
        return report

    def flush(self, store: Any) -> None:
        try:
            ray.get(store.flush.remote())
        except RayActorError:
            pass  # reported by the next report()

    def note(self, what: str, at: float | None = None, level: int = logging.ERROR) -> None:
        if not any(i["what"] == what for i in self.incidents):
            log.log(level, "%s", what)
            self.incidents.append({"time": at, "what": what})


def _track_lost(
    report: StoreReport, running: set[str], lost: set[str], lost_after: float, watch: StoreWatch, at: float
) -> set[str]:
    """The running arms silent for more than ``lost_after`` s; each change goes into the incidents.
    An arm that has not polled yet (the search just started, or the store restarted) is not lost."""
    silent = {name for name in running if report.arm_silence.get(name, 0.0) > lost_after}
    for name in sorted(silent - lost):
        node = report.arm_nodes.get(name, "?")
        watch.note(
            f"arm {name} lost: no poll for {report.arm_silence[name]:.1f} s (node {node[:12]}); "
            "its CPUs go to the other arms",
            round(at, 4),
            logging.WARNING,
        )
    for name in sorted((lost & running) - silent):
        watch.note(f"arm {name} polls again; it takes part in the split again", round(at, 4), logging.WARNING)
    return silent


def allocate(
    history: Sequence[dict[str, Any]], arms: Sequence[str], caps: dict[str, int | None], total: int
) -> dict[str, int]:
    """Solver threads per running arm: the arms ranked by the best incumbent each found
    (arms that found none last, in their given order), each taking what it can use of
    what is left. The first arm with no cap takes all that remains."""
    best: dict[str, int] = {}
    for entry in history:
        if entry["arm"] in arms:
            best[entry["arm"]] = min(best.get(entry["arm"], entry["objective"]), entry["objective"])
    ranked = sorted(arms, key=lambda a: (a not in best, best.get(a, 0), arms.index(a)))
    threads, left = {}, total
    for arm in ranked:
        cap = caps.get(arm)
        threads[arm] = left if cap is None else min(cap, left)
        left -= threads[arm]
    return threads


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


def _final_status(report: StoreReport, deadline_reason: str) -> str:
    if report.incumbent is None:
        return "no_solution"
    if report.bound is not None and report.bound >= report.incumbent.objective:
        return "optimal"
    return report.stop_reason or deadline_reason
