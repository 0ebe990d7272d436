"""Readers, the independent checkers, and bad inputs: no Ray, no solver."""

from __future__ import annotations

import pytest
import vrplib

from mlray.optimize import (
    JobShopProblem,
    JobShopSchedule,
    ProblemError,
    RoutePlan,
    RoutingOptimizer,
    RoutingProblem,
    SchedulingOptimizer,
    check_solution,
    read_problem,
)
from mlray.optimize.problems import makespan, route_cost

ROUTING_WITH_SOLUTIONS = [
    "cvrp/A-n32-k5.vrp",
    "cvrp/E-n13-k4.vrp",
    "cvrp/X-n101-k25.vrp",
    "vrptw/C101.txt",
    "vrptw/R101.txt",
]


def best_known_plan(path) -> RoutePlan:
    solution = vrplib.read_solution(str(path.with_suffix(".sol")))
    return RoutePlan(tuple(tuple(r) for r in solution["routes"]))


@pytest.mark.parametrize("relpath", ROUTING_WITH_SOLUTIONS)
def test_best_known_routes_pass_the_checker_at_their_published_cost(instance, relpath):
    path = instance(relpath)
    problem = read_problem(path)
    plan = best_known_plan(path)
    assert check_solution(problem, plan) == []
    assert route_cost(problem, plan) / problem.scale == pytest.approx(problem.best_known)


def test_checker_rejects_broken_routes(instance):
    path = instance("vrptw/C101.txt")
    problem = read_problem(path)
    routes = [list(r) for r in best_known_plan(path).routes]
    dropped = RoutePlan(tuple(tuple(r) for r in [routes[0][1:], *routes[1:]]))
    assert any("never visited" in v for v in check_solution(problem, dropped))
    doubled = RoutePlan(tuple(tuple(r) for r in [routes[0] + [routes[1][0]], *routes[1:]]))
    assert any("visited 2 times" in v for v in check_solution(problem, doubled))
    merged = RoutePlan(tuple(tuple(r) for r in [routes[0] + routes[1], *routes[2:]]))
    assert any("above capacity" in v for v in check_solution(problem, merged))
    reversed_first = RoutePlan(tuple(tuple(r) for r in [routes[0][::-1], *routes[1:]]))
    assert any("after its due time" in v for v in check_solution(problem, reversed_first))


def serial_schedule(problem: JobShopProblem) -> JobShopSchedule:
    """Feasible by construction: one operation at a time, jobs one after the other."""
    clock, starts = 0, []
    for job in problem.jobs:
        job_starts = []
        for _, duration in job:
            job_starts.append(clock)
            clock += duration
        starts.append(tuple(job_starts))
    return JobShopSchedule(tuple(starts))


def test_jobshop_checker_accepts_a_valid_schedule_and_rejects_broken_ones(instance):
    problem = read_problem(instance("jsp/ft06"))
    assert isinstance(problem, JobShopProblem) and problem.best_known == 55
    schedule = serial_schedule(problem)
    assert check_solution(problem, schedule) == []
    assert makespan(problem, schedule) == problem.horizon
    starts = [list(s) for s in schedule.starts]
    starts[0][1] = starts[0][0]  # second operation before the first ends
    assert any(
        "before op 0 ends" in v for v in check_solution(problem, JobShopSchedule(tuple(map(tuple, starts))))
    )
    starts = [list(s) for s in schedule.starts]
    machine = problem.jobs[1][0][0]
    clash = next(o for o, (m, _) in enumerate(problem.jobs[0]) if m == machine)
    starts[1] = [t - starts[1][0] + starts[0][clash] for t in starts[1]]  # job 1 onto job 0's slot
    assert any("overlaps" in v for v in check_solution(problem, JobShopSchedule(tuple(map(tuple, starts)))))


def test_taillard_and_jsplib_layouts_read_the_same(tmp_path):
    jsplib = tmp_path / "tiny"
    jsplib.write_text("# comment\n2 2\n0 3 1 2\n1 4 0 1\n")
    taillard = tmp_path / "tiny_ta"
    taillard.write_text("2 2\n3 2\n4 1\n1 2\n2 1\n")
    assert read_problem(jsplib).jobs == read_problem(taillard).jobs == (((0, 3), (1, 2)), ((1, 4), (0, 1)))


def test_demand_above_capacity_fails_naming_the_customer():
    with pytest.raises(ProblemError, match=r"demands\[2\]: expected at most the capacity 10, got 11"):
        RoutingProblem.from_coordinates("tiny", [(0, 0), (1, 0), (2, 0)], [0, 5, 11], capacity=10)


def test_negative_duration_fails_naming_the_operation():
    with pytest.raises(ProblemError, match=r"jobs\[1\]\[0\].duration: expected a duration >= 0, got -3"):
        JobShopProblem("tiny", (((0, 2),), ((0, -3),)))


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("broken.vrp", "NAME : x\nTYPE : CVRP\nDIMENSION : 3\nCAPACITY : ten\n", "not a valid VRPLIB file"),
        ("broken_jsp", "2 2\n0 3 1\n", "not a job-shop file"),
        ("words_jsp", "two jobs\n", "not a job-shop file"),
    ],
)
def test_malformed_files_fail_before_solving(tmp_path, make_config, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    optimizer = (
        RoutingOptimizer(make_config()) if name.endswith(".vrp") else SchedulingOptimizer(make_config())
    )
    with pytest.raises(ProblemError, match=expected):
        optimizer.parallel_solve(path)  # raises while reading: no Ray cluster is touched


def test_wrong_problem_type_and_unknown_arm_fail_before_solving(instance, make_config):
    ft06 = read_problem(instance("jsp/ft06"))
    with pytest.raises(ProblemError, match="expected a RoutingProblem, got JobShopProblem"):
        RoutingOptimizer(make_config()).parallel_solve(ft06)
    config = make_config(**{"solver.arms": [{"kind": "routing"}]})
    with pytest.raises(ProblemError, match="cannot solve a jobshop problem"):
        SchedulingOptimizer(config).parallel_solve(ft06)
    config = make_config(**{"solver.arms": [{"kind": "simplex"}]})
    with pytest.raises(ValueError, match="kind: expected one of"):
        SchedulingOptimizer(config).parallel_solve(ft06)
