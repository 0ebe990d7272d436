"""Independent feasibility checks: they share no code with the solvers' models.

Each checker returns the list of violations (empty = feasible), phrased so a
person can find the broken operation or visit.
"""

from __future__ import annotations

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


def check_schedule(problem: JobShopProblem, schedule: JobShopSchedule) -> list[str]:
    violations: list[str] = []
    if len(schedule.starts) != len(problem.jobs):
        return [f"schedule has {len(schedule.starts)} jobs, problem has {len(problem.jobs)}"]
    by_machine: dict[int, list[tuple[int, int, int, int]]] = {}
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
            by_machine.setdefault(machine, []).append((start, start + duration, j, o))
    for machine, slots in by_machine.items():
        slots.sort()
        for (s1, e1, j1, o1), (s2, _, j2, o2) in pairwise(slots):
            if s2 < e1:
                violations.append(
                    f"machine {machine}: job {j1} op {o1} [{s1},{e1}) overlaps job {j2} op {o2} at {s2}"
                )
    return violations


def check_routes(problem: RoutingProblem, plan: RoutePlan) -> list[str]:
    violations: list[str] = []
    routes = [r for r in plan.routes if r]
    if len(routes) > problem.num_vehicles:
        violations.append(f"{len(routes)} routes for a fleet of {problem.num_vehicles}")
    visits = Counter(node for route in routes for node in route)
    for node, count in sorted(visits.items()):
        if not 1 <= node < problem.num_nodes:
            violations.append(f"visit to unknown customer {node}")
        elif count > 1:
            violations.append(f"customer {node} visited {count} times")
    missing = sorted(set(range(1, problem.num_nodes)) - set(visits))
    if missing:
        violations.append(f"customers never visited: {missing[:10]}{'...' if len(missing) > 10 else ''}")
    if violations:
        return violations
    for k, route in enumerate(routes):
        load = sum(problem.demands[node] for node in route)
        if load > problem.capacity:
            violations.append(f"route {k}: load {load} above capacity {problem.capacity}")
        if problem.time_windows is not None:
            violations += _time_window_violations(problem, k, route)
    return violations


def _time_window_violations(problem: RoutingProblem, k: int, route: tuple[int, ...]) -> list[str]:
    assert problem.time_windows is not None
    violations = []
    time = problem.time_windows[0][0]
    here = 0
    for node in (*route, 0):
        arrival = time + problem.travel_time(here, node)
        ready, due = problem.time_windows[node]
        if arrival > due:
            what = "returns to the depot" if node == 0 else f"reaches customer {node}"
            violations.append(
                f"route {k} {what} at {arrival / problem.scale:g}, after its due time {due / problem.scale:g}"
            )
        time = max(arrival, ready)
        here = node
    return violations


def check_solution(problem: Problem, solution: Solution) -> list[str]:
    if isinstance(problem, JobShopProblem):
        if not isinstance(solution, JobShopSchedule):
            return [f"expected a JobShopSchedule, got {type(solution).__name__}"]
        return check_schedule(problem, solution)
    if not isinstance(solution, RoutePlan):
        return [f"expected a RoutePlan, got {type(solution).__name__}"]
    return check_routes(problem, solution)
