"""The driver's pieces: settings and outcome of a solve, starting the store and the arm actors, the
store watch, lost arms, and the end status. The loop itself is ``controller.PortfolioController``; the
CPU split its policy in ``cpu_split.py``.

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
"""

from __future__ import annotations

import logging
import math
import pickle
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from mlray.cluster.runtime import worker_env_vars
from mlray.config.optimize import SolverSection
from mlray.metrics.optimize import OptimizeMetrics
from mlray.optimize.arms.base import ArmActor, ArmLimits, ArmSpec, ArmStats
from mlray.optimize.cpu_split import allocate
from mlray.optimize.incumbent import CheckpointTarget, Incumbent, IncumbentStore, StoreReport
from mlray.optimize.stopping import SearchStopping

__all__ = ["PortfolioOutcome", "PortfolioSettings", "StoreWatch", "allocate", "start_arms", "start_store"]

log = logging.getLogger(__name__)
INLINE_ARGUMENT_BYTES = 100 * 1024  # Ray passes larger arguments through the object store anyway
# Every Ray head node has this resource (Ray's own Train state actor is pinned with it): a tiny share
# keeps the store on the head, whichever worker nodes come and go.
HEAD_NODE_RESOURCE = "node:__internal_head__"


@dataclass(frozen=True)
class PortfolioSettings:
    """The stopping rules and the ``solver`` section as configured (restarts, intervals, race_fraction,
    lost_after, stop_grace...), passed through rather than copied field by field."""

    stopping: SearchStopping
    solver: SolverSection
    startup_timeout: float = 120.0

    @property
    def workers_per_arm(self) -> int:
        """Solver threads per arm in the race: ``solver.workers_per_arm``, else cpus_per_actor rounded up."""
        return self.solver.workers_per_arm or math.ceil(self.solver.cpus_per_actor)


@dataclass
class PortfolioOutcome:
    status: str
    report: StoreReport
    arm_stats: list[ArmStats] = field(default_factory=list)
    solve_seconds: float = 0.0
    store_restarts: int = 0
    states: list[str] = field(default_factory=list)  # the controller's states, in order


ProgressCallback = Callable[[StoreReport, float], None]


def start_store(
    settings: PortfolioSettings,
    checkpoint: CheckpointTarget | None,
    initial: tuple[Incumbent, int | None] | None,
    name_prefix: str,
) -> Any:
    restarts = settings.solver.store_max_restarts
    return IncumbentStore.options(
        max_restarts=restarts,
        max_task_retries=restarts,
        name=f"{name_prefix}.incumbent-store.{uuid.uuid4().hex[:8]}",
        resources={HEAD_NODE_RESOURCE: 0.001},
        # The store writes where this driver reads checkpoints back (e.g. the GCS endpoint it uses now).
        runtime_env={"env_vars": worker_env_vars()},
    ).remote(
        checkpoint,
        None if initial is None else initial[0],
        None if initial is None else initial[1],
    )


def start_arms(
    problem: Any,
    specs: Sequence[ArmSpec],
    settings: PortfolioSettings,
    store: Any,
    observed: OptimizeMetrics | None,
    name_prefix: str,
) -> dict[str, Any]:
    """One actor per arm, by name."""
    solver = settings.solver
    limits = ArmLimits(solver, settings.stopping.round_limit, settings.workers_per_arm, observed)
    actors = {}
    # A large problem goes once into the object store, not once per actor (a 1,000-customer matrix pickles
    # to about 3 MB). A small one travels inline: Ray logs an error-level caveat for every actor whose
    # constructor takes an object-store argument (the driver holds it for the whole solve, so it stays).
    large = len(pickle.dumps(problem)) > INLINE_ARGUMENT_BYTES
    shared_problem = ray.put(problem) if large else problem
    for spec in specs:
        options = {
            "num_cpus": solver.cpus_per_actor,
            "max_restarts": solver.max_restarts,
            "max_task_retries": solver.max_restarts,
            # Unique, so a rerun never collides with the actors of a driver still being torn down.
            "name": f"{name_prefix}.{spec.name}.{uuid.uuid4().hex[:8]}",
        }
        actors[spec.name] = ArmActor.options(**options).remote(shared_problem, spec, store, limits)
    return actors


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


def track_lost(
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


def failed_to_start(actors: dict[str, Any], timeout: float) -> dict[str, str]:
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


def collect(ref: ray.ObjectRef, name: str, kind: str) -> ArmStats:
    try:
        return ray.get(ref)
    except (RayActorError, RayTaskError) as exc:
        log.warning("arm %s dropped: %s", name, str(exc).splitlines()[0])
        return ArmStats(name=name, kind=kind, ended_by="dropped", error=str(exc).splitlines()[0])


def final_status(report: StoreReport, deadline_reason: str) -> str:
    if report.incumbent is None:
        return "no_solution"
    if report.bound is not None and report.bound >= report.incumbent.objective:
        return "optimal"
    return report.stop_reason or deadline_reason
