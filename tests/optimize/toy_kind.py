"""A toy problem kind, whole in this file: single-machine total weighted completion time (1||ΣwC).

It shows that a problem kind is one module plus one line, ``register_kind(TOY_KIND)``: its problem and
solution classes, a reader of its text format, an independent checker, no picture, and a default
portfolio of one toy arm (adjacent-swap descent from random orders). The format::

    smtwc <name>
    <processing time> <weight>     # one line per job; '#' starts a comment

Smith's rule (jobs in increasing processing time / weight) is optimal, and an order no adjacent swap
improves is one, so the arm finds the optimum of a small instance within its first round.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlray.config.optimize import ArmSection, SolverSection
from mlray.optimize import ProblemError, ProblemKind
from mlray.optimize.arms.base import Arm, RoundResult, StoreLink
from mlray.optimize.incumbent import Incumbent

HEADER = "smtwc"


@dataclass(frozen=True)
class WeightedJobsProblem:
    name: str
    jobs: tuple[tuple[int, int], ...]  # (processing time, weight)
    best_known: float | None = None
    kind: str = field(default="smtwc", init=False)
    scale: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        if not self.jobs or any(p < 0 or w < 0 for p, w in self.jobs):
            raise ProblemError(f"{self.name}: jobs: expected (time >= 0, weight >= 0) pairs, got {self.jobs}")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps({"kind": self.kind, "jobs": self.jobs}).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class JobOrder:
    order: tuple[int, ...]

    def to_payload(self) -> dict[str, Any]:
        return {"order": list(self.order)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> JobOrder:
        return cls(tuple(int(j) for j in payload["order"]))


def weighted_completion(jobs: tuple[tuple[int, int], ...], order: tuple[int, ...] | list[int]) -> int:
    clock = total = 0
    for j in order:
        clock += jobs[j][0]
        total += jobs[j][1] * clock
    return total


def detect(path: Path) -> bool:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(errors="replace").splitlines()]
    return next((line for line in lines if line), "").split()[:1] == [HEADER]


def read(path: Path, kind: str) -> WeightedJobsProblem:
    lines = [line.split("#", 1)[0].split() for line in path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    if not lines or lines[0][0] != HEADER:
        raise ProblemError(f"{path}: expected a first line '{HEADER} <name>'")
    try:
        jobs = tuple((int(p), int(w)) for p, w in lines[1:])
    except ValueError:
        raise ProblemError(f"{path}: expected lines of '<processing time> <weight>'") from None
    name = lines[0][1] if len(lines[0]) > 1 else path.stem
    return WeightedJobsProblem(name, jobs)


def check(problem: WeightedJobsProblem, solution: JobOrder, reported: int | None = None) -> list[str]:
    if sorted(solution.order) != list(range(len(problem.jobs))):
        return [f"order {list(solution.order)} is not a permutation of the {len(problem.jobs)} jobs"]
    cost = weighted_completion(problem.jobs, solution.order)
    if reported is not None and reported != cost:
        return [f"reported {reported} differs from the recomputed {cost}"]
    return []


class SwapDescentArm(Arm):
    """Adjacent-swap descent from the round's start (or a random order), then from random orders."""

    problem_type = WeightedJobsProblem

    def solve_round(self, start: Incumbent | None, time_limit: float, link: StoreLink,
                    round_index: int) -> RoundResult:
        rng = random.Random(self.spec.seed * 1_000_003 + round_index)
        jobs = self.problem.jobs
        order = list(range(len(jobs))) if start is None else list(start.payload["order"])
        if start is None:
            rng.shuffle(order)
        ends = time.monotonic() + time_limit
        while time.monotonic() < ends and not link.should_stop_round():
            improved = True
            while improved:
                improved = False
                for i in range(len(order) - 1):
                    swapped = [*order[:i], order[i + 1], order[i], *order[i + 2:]]
                    if weighted_completion(jobs, swapped) < weighted_completion(jobs, order):
                        order, improved = swapped, True
            link.publish(weighted_completion(jobs, order), {"order": order})
            rng.shuffle(order)
        return RoundResult("time_limit")


def default_arms(problem: WeightedJobsProblem, solver: SolverSection) -> list[ArmSection]:
    return [ArmSection(name="swap", kind="tests.optimize.toy_kind:SwapDescentArm", seed=solver.seed)]


TOY_KIND = ProblemKind(
    name="smtwc",
    problem_type=WeightedJobsProblem,
    solution_type=JobOrder,
    read=read,
    detect=detect,
    check=check,
    default_arms=default_arms,
)
