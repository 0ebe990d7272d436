"""The checker is independent of the arms: its own distances and costs, and it catches lying arms."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest
import vrplib

from mlray.optimize import JobShopSchedule, RoutePlan, RoutingOptimizer, SchedulingOptimizer, read_problem
from mlray.optimize import checkers, problems
from mlray.optimize.checkers import RoutingDistances, check_solution, routing_cost

DATA_CLASSES = (
    problems.JobShopProblem,
    problems.JobShopSchedule,
    problems.RoutingProblem,
    problems.RoutePlan,
)


def test_checker_imports_nothing_from_the_arms_and_uses_no_problem_helper():
    tree = ast.parse(inspect.getsource(checkers))
    imported = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    imported |= {
        (alias.name, None) for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    from_mlray = {(module, name) for module, name in imported if module and module.startswith("mlray")}
    assert not [m for m, _ in imported if m and "arms" in m], imported
    # From the problems module only the data classes (and their type aliases), for their fields.
    data_names = {cls.__name__ for cls in DATA_CLASSES} | {"Problem", "Solution"}
    assert from_mlray and {module for module, _ in from_mlray} == {"mlray.optimize.problems"}, from_mlray
    assert {name for _, name in from_mlray} <= data_names, from_mlray
    # No method or property of those classes, no module helper (route_cost, makespan, travel_time, ...).
    fields = {f.name for cls in DATA_CLASSES for f in dataclasses.fields(cls)}
    helpers = {
        name
        for cls in DATA_CLASSES
        for name, _ in inspect.getmembers(cls)
        if not name.startswith("__") and name not in fields
    } | {name for name, value in vars(problems).items() if inspect.isfunction(value)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "travel_time" in helpers and "route_cost" in helpers  # the rule below has teeth
    assert not (attributes | names) & helpers, (attributes | names) & helpers


@pytest.mark.parametrize(
    "relpath",
    ["cvrp/X-n101-k25.vrp", "cvrp/A-n32-k5.vrp", "cvrp/E-n13-k4.vrp", "vrptw/C101.txt", "vrptw/R101.txt"],
)
def test_checker_distances_follow_the_file_conventions_and_reproduce_published_costs(instance, relpath):
    path = instance(relpath)
    problem = read_problem(path)
    distance = RoutingDistances(problem)
    n = len(problem.demands)
    mismatches = [(a, b) for a in range(n) for b in range(n) if distance(a, b) != problem.distances[a][b]]
    assert mismatches == []  # the same VRPLIB / DIMACS rounding as the reader, computed separately
    solution = vrplib.read_solution(str(path.with_suffix(".sol")))
    plan = RoutePlan(tuple(tuple(r) for r in solution["routes"]))
    assert routing_cost(problem, plan) / problem.scale == pytest.approx(problem.best_known)
    assert check_solution(problem, plan, routing_cost(problem, plan)) == []


def test_wrong_schedules_and_claims_are_caught_without_a_solver(instance):
    problem = read_problem(instance("jsp/ft06"))
    clock, starts = 0, []
    for job in problem.jobs:  # one operation at a time: feasible, makespan = the sum of all durations
        job_starts = []
        for _, duration in job:
            job_starts.append(clock)
            clock += duration
        starts.append(tuple(job_starts))
    schedule = JobShopSchedule(tuple(starts))
    assert check_solution(problem, schedule, clock) == []
    assert check_solution(problem, schedule, clock - 1) == [
        f"reported makespan {clock - 1} differs from the recomputed {clock}"
    ]
    late = [list(s) for s in starts]
    late[-1][-1] += 1  # the last operation one unit later: makespan grows by one
    assert check_solution(problem, JobShopSchedule(tuple(map(tuple, late))), clock) == [
        f"reported makespan {clock} differs from the recomputed {clock + 1}"
    ]


def lying_config(make_config, kind: str, **overrides):
    arms = [{"name": "liar", "kind": f"tests.optimize.lying_arms:{kind}"}]
    return make_config(**{"solver.arms": arms, "solver.time_limit": 2, "output.plots": False, **overrides})


@pytest.mark.security
@pytest.mark.parametrize("kind", ["OrToolsCostPlusOne", "PyVrpCostPlusOne"])
def test_checker_catches_each_routing_arm_reporting_a_cost_off_by_one(
    ray_cluster, instance, make_config, security_probe, kind
):
    problem = read_problem(instance("cvrp/A-n32-k5.vrp"))
    result = RoutingOptimizer(lying_config(make_config, kind)).parallel_solve(problem)
    true_cost = routing_cost(problem, result.solution)
    assert result.objective == true_cost + 1  # what the arm claimed (scale 1)
    assert not result.feasible
    assert result.violations == [f"reported cost {true_cost + 1} differs from the recomputed {true_cost}"]
    assert check_solution(problem, result.solution, true_cost) == []  # only the claim was wrong
    arm = "OR-Tools routing" if kind.startswith("OrTools") else "PyVRP"
    security_probe(
        "checker",
        f"{arm} arm reports every route plan's cost one above its true cost (A-n32-k5)",
        "result infeasible, violation names reported and recomputed cost",
        f"feasible={result.feasible}; violations={result.violations}",
    )


@pytest.mark.security
@pytest.mark.parametrize(
    ("kind", "expected"),
    [("CpSatMakespanMinusOne", "reported makespan"), ("CpSatEverythingAtZero", "overlaps")],
)
def test_checker_catches_a_cp_sat_arm_reporting_a_wrong_or_infeasible_schedule(
    ray_cluster, instance, make_config, security_probe, kind, expected
):
    problem = read_problem(instance("jsp/ft06"))
    result = SchedulingOptimizer(lying_config(make_config, kind)).parallel_solve(problem)
    assert not result.feasible
    assert any(expected in v for v in result.violations), result.violations
    if kind == "CpSatMakespanMinusOne":
        true_makespan = max(
            s + d for job, st in zip(problem.jobs, result.solution.starts) for (_, d), s in zip(job, st)
        )
        assert result.violations == [
            f"reported makespan {true_makespan - 1} differs from the recomputed {true_makespan}"
        ]
    else:
        assert any("before op 0 ends" in v for v in result.violations)
    security_probe(
        "checker",
        "CP-SAT arm reports makespan - 1"
        if kind == "CpSatMakespanMinusOne"
        else "CP-SAT arm publishes a schedule with every operation at time 0 (ft06)",
        "result infeasible, violation names the lie",
        f"feasible={result.feasible}; violations={result.violations[:3]}",
    )


@pytest.mark.security
@pytest.mark.parametrize("kind", ["routing", "pyvrp"])
def test_a_distance_bug_shared_by_the_arms_cannot_hide_from_the_checker(
    ray_cluster, instance, make_config, security_probe, kind
):
    """Honest arms on a matrix with every depot departure one unit too long (as a bug in the distance
    code they share would make it): the checker recomputes from the coordinates and sees the difference."""
    problem = read_problem(instance("cvrp/A-n32-k5.vrp"))
    skewed = tuple(
        tuple(d + 1 if origin == 0 and destination else d for destination, d in enumerate(row))
        for origin, row in enumerate(problem.distances)
    )
    buggy = dataclasses.replace(problem, distances=skewed)
    config = make_config(**{"solver.arms": [{"kind": kind}], "solver.time_limit": 2, "output.plots": False})
    result = RoutingOptimizer(config).parallel_solve(buggy)
    true_cost = routing_cost(problem, result.solution)
    routes = len(result.solution.routes)
    assert result.objective == true_cost + routes  # the arm's honest cost on the skewed matrix
    assert result.violations == [
        f"reported cost {true_cost + routes} differs from the recomputed {true_cost}"
    ]
    security_probe(
        "checker",
        f"{kind} arm solves on a distance matrix skewed +1 per depot departure (A-n32-k5)",
        "checker recomputes from coordinates: result infeasible, reported vs recomputed cost",
        f"feasible={result.feasible}; violations={result.violations}",
    )
