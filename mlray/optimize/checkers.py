"""Independent checks of a solution and of the objective reported for it.

Nothing here is shared with the arms: distances, travel times, route costs and
makespans are computed from the instance's own data (coordinates or the
file's matrix, time windows, service times, demands, capacity, durations),
with this module's own arithmetic. Only the problem and solution data classes
are imported, for their fields; no method or helper the arms call is used
(tests/optimize/test_checkers.py inspects this module's imports and
attribute reads). A bug in a solver's distance or cost code therefore shows
up as "reported objective differs", instead of being repeated here.

Each checker returns the list of violations (empty = feasible and honestly
costed), phrased so a person can find the broken operation or visit.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

from mlray.optimize.problems import (
    JobShopProblem,
    JobShopSchedule,
    Problem,
    RoutePlan,
    RoutingProblem,
    Solution,
)


def check_schedule(
    problem: JobShopProblem, schedule: JobShopSchedule, reported_objective: int | None = None
) -> list[str]:
    violations: list[str] = []
    if len(schedule.starts) != len(problem.jobs):
        return [f"schedule has {len(schedule.starts)} jobs, problem has {len(problem.jobs)}"]
    by_machine: dict[int, list[tuple[int, int, int, int]]] = {}
    finish = 0
    for j, (job, starts) in enumerate(zip(problem.jobs, schedule.starts, strict=True)):
        if len(starts) != len(job):
            violations.append(f"job {j}: {len(starts)} start times for {len(job)} operations")
            continue
        previous_end = 0
        for o, ((machine, duration), start) in enumerate(zip(job, starts, strict=True)):
            if start < 0:
                violations.append(f"job {j} op {o}: negative start {start}")
            if start < previous_end:
                violations.append(
                    f"job {j} op {o}: starts at {start} before op {o - 1} ends at {previous_end}"
                )
            previous_end = start + duration
            finish = max(finish, previous_end)
            by_machine.setdefault(machine, []).append((start, start + duration, j, o))
    for machine, slots in by_machine.items():
        slots.sort()
        for (s1, e1, j1, o1), (s2, _, j2, o2) in pairwise(slots):
            if s2 < e1:
                violations.append(
                    f"machine {machine}: job {j1} op {o1} [{s1},{e1}) overlaps job {j2} op {o2} at {s2}"
                )
    if not violations and reported_objective is not None and reported_objective != finish:
        violations.append(f"reported makespan {reported_objective} differs from the recomputed {finish}")
    return violations


class RoutingDistances:
    """Distances between the nodes of a routing instance, computed the way its file defines them.

    ``euclidean_rounded`` (VRPLIB EUC_2D): the Euclidean distance rounded to the nearest integer;
    ``euclidean_tenths`` (Solomon, DIMACS): in tenths, truncated; ``matrix``: the file's own
    (EXPLICIT) matrix. Integer coordinates, as in every shared instance, are computed exactly in
    integers; other coordinates in floating point.
    """

    def __init__(self, problem: RoutingProblem) -> None:
        self.rule = problem.distance_rule
        self.points = problem.coordinates
        self.matrix = problem.distances if self.rule == "matrix" else None
        self._cache: dict[tuple[int, int], int] = {}

    def __call__(self, a: int, b: int) -> int:
        if self.matrix is not None:
            return self.matrix[a][b]
        key = (a, b)
        if key not in self._cache:
            self._cache[key] = self._euclidean(self.points[a], self.points[b])
        return self._cache[key]

    def _euclidean(self, p: tuple[float, float], q: tuple[float, float]) -> int:
        dx, dy = p[0] - q[0], p[1] - q[1]
        integral = all(float(v).is_integer() for v in (dx, dy))
        if self.rule == "euclidean_tenths":
            if integral:
                return math.isqrt(100 * (int(dx) ** 2 + int(dy) ** 2))
            return math.floor(10 * math.sqrt(dx * dx + dy * dy) + 1e-9)
        if integral:
            squared = int(dx) ** 2 + int(dy) ** 2
            root = math.isqrt(squared)
            # sqrt(n) >= root + 1/2  <=>  n >= root^2 + root + 1/4  <=>  n > root^2 + root (n integer)
            return root + (squared - root * root > root)
        return math.floor(math.sqrt(dx * dx + dy * dy) + 0.5)


def routing_cost(problem: RoutingProblem, plan: RoutePlan) -> int:
    """Total distance of the plan, every route from the depot and back, in the problem's units."""
    distance = RoutingDistances(problem)
    return sum(distance(a, b) for route in plan.routes if route for a, b in pairwise((0, *route, 0)))


def check_routes(
    problem: RoutingProblem, plan: RoutePlan, reported_objective: int | None = None
) -> list[str]:
    violations: list[str] = []
    nodes = len(problem.demands)
    routes = [r for r in plan.routes if r]
    if len(routes) > problem.num_vehicles:
        violations.append(f"{len(routes)} routes for a fleet of {problem.num_vehicles}")
    visits = Counter(node for route in routes for node in route)
    for node, count in sorted(visits.items()):
        if not 1 <= node < nodes:
            violations.append(f"visit to unknown customer {node}")
        elif count > 1:
            violations.append(f"customer {node} visited {count} times")
    missing = sorted(set(range(1, nodes)) - set(visits))
    if missing:
        violations.append(f"customers never visited: {missing[:10]}{'...' if len(missing) > 10 else ''}")
    if violations:
        return violations
    distance = RoutingDistances(problem)
    for k, route in enumerate(routes):
        load = sum(problem.demands[node] for node in route)
        if load > problem.capacity:
            violations.append(f"route {k}: load {load} above capacity {problem.capacity}")
        if problem.time_windows is not None:
            violations += _time_window_violations(problem, distance, k, route)
    if not violations and reported_objective is not None:
        cost = routing_cost(problem, plan)
        if reported_objective != cost:
            violations.append(
                f"reported cost {reported_objective / problem.scale:g} differs from the recomputed "
                f"{cost / problem.scale:g}"
            )
    return violations


def _time_window_violations(
    problem: RoutingProblem, distance: RoutingDistances, k: int, route: tuple[int, ...]
) -> list[str]:
    """Service starts at arrival or at the ready time, whichever is later; it must start by the due
    time, and the vehicle must be back at the depot by the depot's due time."""
    windows = problem.time_windows
    assert windows is not None
    services = problem.service_times or (0,) * len(windows)
    violations = []
    clock = windows[0][0]
    here = 0
    for node in (*route, 0):
        arrival = clock + services[here] + distance(here, node)
        ready, due = windows[node]
        if arrival > due:
            what = "returns to the depot" if node == 0 else f"reaches customer {node}"
            violations.append(
                f"route {k} {what} at {arrival / problem.scale:g}, after its due time {due / problem.scale:g}"
            )
        clock = max(arrival, ready)
        here = node
    return violations


def check_solution(problem: Problem, solution: Solution, reported_objective: int | None = None) -> list[str]:
    """Violations of ``solution``; with ``reported_objective`` (in the problem's integer units), also
    whether the solver's claimed objective is the one recomputed here."""
    if isinstance(problem, JobShopProblem):
        if not isinstance(solution, JobShopSchedule):
            return [f"expected a JobShopSchedule, got {type(solution).__name__}"]
        return check_schedule(problem, solution, reported_objective)
    if not isinstance(solution, RoutePlan):
        return [f"expected a RoutePlan, got {type(solution).__name__}"]
    return check_routes(problem, solution, reported_objective)
