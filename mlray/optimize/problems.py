"""Typed optimisation problems and their solutions.

Problems validate themselves on construction, so a bad input (a demand above
the vehicle capacity, a negative duration) fails with a clear message before
any actor starts. Objectives are integers: routing distances are kept in
units of ``1/scale`` (Solomon instances use DIMACS tenths), which makes
"better by one" exact for every solver in the portfolio.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal


class ProblemError(ValueError):
    """An input that cannot be solved; the message names the field and what was expected."""


def _fail(problem: str, field_name: str, expected: str, got: Any) -> ProblemError:
    return ProblemError(f"{problem}: {field_name}: expected {expected}, got {got!r}")


@dataclass(frozen=True)
class JobShopProblem:
    """Jobs of ordered operations ``(machine, duration)``; minimise the makespan."""

    name: str
    jobs: tuple[tuple[tuple[int, int], ...], ...]
    best_known: float | None = None
    kind: Literal["jobshop"] = field(default="jobshop", init=False)

    def __post_init__(self) -> None:
        jobs = tuple(tuple((int(m), int(d)) for m, d in job) for job in self.jobs)
        object.__setattr__(self, "jobs", jobs)
        if not jobs:
            raise _fail(self.name, "jobs", "at least one job", jobs)
        for j, job in enumerate(jobs):
            if not job:
                raise _fail(self.name, f"jobs[{j}]", "at least one operation", job)
            machines = [m for m, _ in job]
            for o, (machine, duration) in enumerate(job):
                if machine < 0:
                    raise _fail(self.name, f"jobs[{j}][{o}].machine", "a machine index >= 0", machine)
                if duration < 0:
                    raise _fail(self.name, f"jobs[{j}][{o}].duration", "a duration >= 0", duration)
            if len(set(machines)) != len(machines):
                raise _fail(self.name, f"jobs[{j}]", "each machine at most once per job", machines)

    @property
    def num_machines(self) -> int:
        return 1 + max(m for job in self.jobs for m, _ in job)

    @property
    def horizon(self) -> int:
        return sum(d for job in self.jobs for _, d in job)

    @property
    def scale(self) -> int:
        return 1

    def fingerprint(self) -> str:
        return _digest({"kind": self.kind, "jobs": self.jobs})


@dataclass(frozen=True)
class JobShopSchedule:
    """Start time of every operation, ``starts[job][operation]``."""

    starts: tuple[tuple[int, ...], ...]

    def to_payload(self) -> dict[str, Any]:
        return {"starts": [list(s) for s in self.starts]}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> JobShopSchedule:
        return cls(tuple(tuple(int(t) for t in job) for job in payload["starts"]))


def makespan(problem: JobShopProblem, schedule: JobShopSchedule) -> int:
    return max(
        start + duration
        for job, starts in zip(problem.jobs, schedule.starts, strict=True)
        for (_, duration), start in zip(job, starts, strict=True)
    )


@dataclass(frozen=True)
class RoutingProblem:
    """CVRP, or VRPTW when ``time_windows`` is given. Node 0 is the depot.

    ``distances`` are integers in units of ``1/scale``; travel time equals
    distance (the Solomon convention), and ``time_windows`` and
    ``service_times`` use the same units.
    """

    name: str
    coordinates: tuple[tuple[float, float], ...]
    demands: tuple[int, ...]
    capacity: int
    num_vehicles: int
    distances: tuple[tuple[int, ...], ...]
    scale: int = 1
    time_windows: tuple[tuple[int, int], ...] | None = None
    service_times: tuple[int, ...] | None = None
    best_known: float | None = None
    # How the instance defines distances, so the checker can recompute them from the coordinates:
    # "matrix" (given as such), "euclidean_rounded" (VRPLIB EUC_2D), "euclidean_tenths" (DIMACS).
    distance_rule: Literal["matrix", "euclidean_rounded", "euclidean_tenths"] = "matrix"

    def __post_init__(self) -> None:
        n = len(self.coordinates)
        if n < 2:
            raise _fail(self.name, "coordinates", "a depot and at least one customer", n)
        object.__setattr__(self, "demands", tuple(int(d) for d in self.demands))
        object.__setattr__(self, "distances", tuple(tuple(int(v) for v in row) for row in self.distances))
        if len(self.demands) != n:
            raise _fail(self.name, "demands", f"{n} values (one per node)", len(self.demands))
        if self.capacity <= 0:
            raise _fail(self.name, "capacity", "a positive vehicle capacity", self.capacity)
        if self.num_vehicles <= 0:
            raise _fail(self.name, "num_vehicles", "a positive fleet size", self.num_vehicles)
        if self.scale <= 0:
            raise _fail(self.name, "scale", "a positive integer", self.scale)
        for node, demand in enumerate(self.demands):
            if demand < 0:
                raise _fail(self.name, f"demands[{node}]", "a demand >= 0", demand)
            if demand > self.capacity:
                raise _fail(self.name, f"demands[{node}]", f"at most the capacity {self.capacity}", demand)
        if len(self.distances) != n or any(len(row) != n for row in self.distances):
            raise _fail(self.name, "distances", f"an {n}x{n} matrix", [len(r) for r in self.distances])
        if any(v < 0 for row in self.distances for v in row):
            raise _fail(self.name, "distances", "non-negative values", min(min(r) for r in self.distances))
        if self.time_windows is not None:
            windows = tuple((int(a), int(b)) for a, b in self.time_windows)
            object.__setattr__(self, "time_windows", windows)
            if len(windows) != n:
                raise _fail(self.name, "time_windows", f"{n} windows", len(windows))
            for node, (early, late) in enumerate(windows):
                if early < 0 or late < early:
                    raise _fail(self.name, f"time_windows[{node}]", "0 <= ready <= due", (early, late))
        if self.service_times is not None:
            services = tuple(int(s) for s in self.service_times)
            object.__setattr__(self, "service_times", services)
            if len(services) != n:
                raise _fail(self.name, "service_times", f"{n} values", len(services))
            if any(s < 0 for s in services):
                raise _fail(self.name, "service_times", "durations >= 0", min(services))

    @classmethod
    def from_coordinates(
        cls,
        name: str,
        coordinates: Sequence[Sequence[float]],
        demands: Sequence[int],
        capacity: int,
        num_vehicles: int | None = None,
        *,
        rounding: Literal["round", "dimacs"] = "round",
        time_windows: Sequence[Sequence[float]] | None = None,
        service_times: Sequence[float] | None = None,
        best_known: float | None = None,
    ) -> RoutingProblem:
        """Build from points: ``round`` is TSPLIB's nearest integer, ``dimacs`` truncates tenths (the
        distances, and the time windows and service times with them, in units of 1/10)."""
        points = tuple((float(x), float(y)) for x, y in coordinates)
        scale = 10 if rounding == "dimacs" else 1

        def distance(a: tuple[float, float], b: tuple[float, float]) -> int:
            exact = math.hypot(a[0] - b[0], a[1] - b[1])
            return int(exact * scale + 1e-9) if rounding == "dimacs" else math.floor(exact + 0.5)

        def scaled(value: float) -> int:
            """Times in the distances' units: DIMACS truncates tenths (PyVRP's ``dimacs``), TSPLIB rounds."""
            return int(value * scale + 1e-9) if rounding == "dimacs" else round(value)

        matrix = tuple(tuple(distance(a, b) for b in points) for a in points)
        return cls(
            name=name,
            coordinates=points,
            demands=tuple(int(d) for d in demands),
            capacity=int(capacity),
            num_vehicles=int(num_vehicles if num_vehicles is not None else len(points) - 1),
            distances=matrix,
            scale=scale,
            time_windows=None
            if time_windows is None
            else tuple((scaled(a), scaled(b)) for a, b in time_windows),
            service_times=None if service_times is None else tuple(scaled(s) for s in service_times),
            best_known=best_known,
            distance_rule="euclidean_tenths" if rounding == "dimacs" else "euclidean_rounded",
        )

    @property
    def kind(self) -> Literal["cvrp", "vrptw"]:
        return "vrptw" if self.time_windows is not None else "cvrp"

    @property
    def num_nodes(self) -> int:
        return len(self.coordinates)

    @property
    def horizon(self) -> int:
        if self.time_windows is not None:
            return self.time_windows[0][1]
        return sum(max(row) for row in self.distances)

    def travel_time(self, origin: int, destination: int) -> int:
        """Service at ``origin`` plus the drive: what a time dimension adds along an arc."""
        service = self.service_times[origin] if self.service_times is not None else 0
        return service + self.distances[origin][destination]

    def min_vehicles(self) -> int:
        return max(1, math.ceil(sum(self.demands) / self.capacity))

    def fingerprint(self) -> str:
        return _digest(
            {
                "kind": self.kind,
                "demands": self.demands,
                "capacity": self.capacity,
                "distances": self.distances,
                "tw": self.time_windows,
                "service": self.service_times,
            }
        )


@dataclass(frozen=True)
class RoutePlan:
    """Customer visits per used vehicle, depot excluded: ``routes[k] = [node, ...]``."""

    routes: tuple[tuple[int, ...], ...]

    def to_payload(self) -> dict[str, Any]:
        return {"routes": [list(r) for r in self.routes]}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RoutePlan:
        return cls(tuple(tuple(int(v) for v in r) for r in payload["routes"] if r))


def route_cost(problem: RoutingProblem, plan: RoutePlan) -> int:
    total = 0
    for route in plan.routes:
        path = (0, *route, 0)
        total += sum(problem.distances[a][b] for a, b in pairwise(path))
    return total


Problem = JobShopProblem | RoutingProblem
Solution = JobShopSchedule | RoutePlan


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
