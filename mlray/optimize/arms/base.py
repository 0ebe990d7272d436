"""What every arm shares: its spec, the link to the incumbent store, and the round loop.

An arm is a plug-in: a class with ``solve_round``. The loop around it (one
``run_arm`` for all kinds) starts each round from the best incumbent it is
allowed to see (the global one when sharing, its own otherwise), passes the
round a ``StoreLink`` (``link.py``) to publish through and to ask whether to stop early, and
forwards the bounds the round proves.

The store may also hand out solver threads (``IncumbentStore.set_allocation``,
decided by the portfolio driver): a change cuts the running round, the next
round runs with the new count, and an arm given 0 threads parks until the end.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ray

from mlray.config.optimize import ArmSection
from mlray.imports import import_object
from mlray.optimize.arms.link import ArmLimits, StoreLink
from mlray.optimize.incumbent import Incumbent
from mlray.optimize.problems import Problem

__all__ = ["ARM_KINDS", "Arm", "ArmActor", "ArmLimits", "ArmSpec", "ArmStats", "RoundResult", "StoreLink"]

log = logging.getLogger(__name__)

ARM_KINDS = {
    "cp_sat": "mlray.optimize.arms.cpsat_jobshop:CpSatJobShopArm",
    "routing": "mlray.optimize.arms.ortools_routing:OrToolsRoutingArm",
    "pyvrp": "mlray.optimize.arms.pyvrp_arm:PyVrpArm",
    "jobshop_tabu": "mlray.optimize.arms.jobshop_tabu:JobShopTabuArm",
}


@dataclass(frozen=True)
class ArmSpec:
    """One arm: ``kind`` is a name in ``ARM_KINDS`` or an import path ``pkg.mod:Class``."""

    name: str
    kind: str
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    improve_only: bool = False
    receive: bool = True  # when sharing, take other arms' incumbents; False: an anchor, it only gives

    @classmethod
    def from_section(cls, section: ArmSection, index: int) -> ArmSpec:
        """The arm a ``solver.arms`` entry configures; unnamed, it is ``<kind>-<index>``."""
        return cls(name=section.name or f"{section.kind}-{index}", **section.model_dump(exclude={"name"}))


@dataclass
class RoundResult:
    """``bound``: a lower bound valid for the whole problem; ``exhausted``: nothing better than
    the round's start exists (the start is optimal)."""

    ended_by: str
    bound: int | None = None
    exhausted: bool = False


@dataclass
class ArmStats:
    name: str
    kind: str
    rounds: int = 0
    round_ends: dict[str, int] = field(default_factory=dict)
    improvements: int = 0
    handovers: int = 0  # rounds started from another arm's incumbent
    taken_from: dict[str, int] = field(default_factory=dict)  # those rounds by the incumbent's arm
    given: int = 0  # rounds of other arms started from this arm's incumbent (set by the portfolio)
    best_objective: int | None = None
    ended_by: str = ""
    seconds: float = 0.0
    restarted: bool = False
    error: str | None = None
    threads: list[int] = field(default_factory=list)  # solver threads of each allotment, in order
    node_id: str | None = None  # the Ray node its actor last ran on (set by the portfolio)


class Arm(ABC):
    """A search strategy; ``solve_round`` runs one round of at most ``time_limit`` seconds."""

    problem_type: type = object

    @classmethod
    def accepts(cls, problem: Problem) -> bool:
        return isinstance(problem, cls.problem_type)

    @classmethod
    def thread_cap(cls, spec: ArmSpec) -> int | None:
        """The most solver threads this arm can use (None: any number); single-threaded by default."""
        return 1

    def __init__(self, problem: Problem, spec: ArmSpec, cpus: int) -> None:
        self.problem = problem
        self.spec = spec
        self.cpus = cpus  # solver threads for the next round (the store may change it between rounds)

    @abstractmethod
    def solve_round(
        self, start: Incumbent | None, time_limit: float, link: StoreLink, round_index: int
    ) -> RoundResult:
        """Search, calling ``link.publish`` for improving solutions and returning when
        ``link.should_stop_round()`` turns true or the time is up."""


def arm_class_of(spec: ArmSpec) -> type[Arm]:
    path = ARM_KINDS.get(spec.kind, spec.kind)
    if ":" not in path:
        raise ValueError(
            f"arm {spec.name}: kind: expected one of {sorted(ARM_KINDS)} or 'pkg.module:Class', got {spec.kind!r}"
        )
    arm_class = import_object(path)
    if not (isinstance(arm_class, type) and issubclass(arm_class, Arm)):
        raise TypeError(f"arm {spec.name}: kind {spec.kind!r} does not name an Arm subclass")
    return arm_class


def build_arm(problem: Problem, spec: ArmSpec, cpus: int) -> Arm:
    arm_class = arm_class_of(spec)
    if not arm_class.accepts(problem):
        raise TypeError(f"arm {spec.name}: {spec.kind} cannot solve a {problem.kind} problem")
    return arm_class(problem, spec, cpus)


def run_arm(arm: Arm, link: StoreLink) -> ArmStats:
    """Rounds until the store says stop, the deadline passes, or this arm proves optimality."""
    started = time.monotonic()
    stats = ArmStats(name=arm.spec.name, kind=arm.spec.kind)
    ends: Counter[str] = Counter()
    initial_threads = arm.cpus
    while True:
        link.refresh(force=True)
        if link.stop_reason is not None:
            stats.ended_by = link.stop_reason
            break
        remaining = link.deadline - time.time()
        if remaining <= 0:
            stats.ended_by = "time_limit"
            break
        allotted = link.threads
        arm.cpus = initial_threads if allotted is None else allotted
        if not stats.threads or stats.threads[-1] != arm.cpus:
            stats.threads.append(arm.cpus)
        start = link.global_incumbent if link.receives else link.own_best
        if arm.cpus == 0 or (start is None and arm.spec.improve_only):
            # Parked (its CPUs went to another arm), or nothing to improve yet: wait.
            time.sleep(link.limits.poll_interval)
            continue
        if start is not None and start.arm != arm.spec.name:
            stats.handovers += 1
            stats.taken_from[start.arm] = stats.taken_from.get(start.arm, 0) + 1
        round_limit = min(remaining, link.limits.round_limit or math.inf)
        link.begin_round(start, allotted)
        result = arm.solve_round(start, round_limit, link, stats.rounds)
        stats.rounds += 1
        if link.limits.observed is not None:
            link.limits.observed.round(arm.spec.name)
        ends[result.ended_by] += 1
        if result.bound is not None:
            link.publish_bound(result.bound)
        if result.exhausted and start is not None:
            link.publish_bound(start.objective)
            if not link.receives:
                stats.ended_by = "optimal"
                break
    stats.round_ends = dict(ends)
    stats.improvements = link.improvements
    stats.best_objective = None if link.own_best is None else link.own_best.objective
    stats.seconds = round(time.monotonic() - started, 3)
    return stats


@ray.remote
class ArmActor:
    """One arm in its own process; Ray restarts it (``max_restarts``) and retries ``run``."""

    def __init__(self, problem: Problem, spec: ArmSpec, store: Any, limits: ArmLimits) -> None:
        self.arm = build_arm(problem, spec, limits.cpus)
        self.link = StoreLink(store, spec.name, limits, spec.receive)
        # Where this incarnation runs: the store reports it, so a lost node can be matched to its arms.
        store.arm_started.remote(spec.name, ray.get_runtime_context().get_node_id())

    def ready(self) -> bool:
        return True

    def run(self, deadline: float) -> ArmStats:
        self.link.deadline = deadline
        stats = run_arm(self.arm, self.link)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # raised by Ray's own property
            stats.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        return stats


def count_given(stats: list[ArmStats]) -> None:
    """Set each arm's ``given``: how many rounds of the other arms started from its incumbents."""
    for arm in stats:
        arm.given = sum(other.taken_from.get(arm.name, 0) for other in stats if other is not arm)
