"""The job-shop tabu arm: its compiled search against the independent checker, its exchange with CP-SAT."""

from __future__ import annotations

import numpy as np
import pytest

from mlray.optimize import SchedulingOptimizer, read_problem
from mlray.optimize.arms.base import ArmSpec, arm_class_of
from mlray.optimize.arms.jobshop_tabu import JobShopGraph, Walker, tabu_parameters
from mlray.optimize.checkers import check_schedule
from mlray.optimize.problems import JobShopProblem


def job_after_job_orders(graph: JobShopGraph) -> tuple[np.ndarray, np.ndarray]:
    """A poor start: every machine serves job 0, then job 1, ... (the jobs run one after another)."""
    prev = np.full(graph.size, -1, dtype=np.int64)
    nxt = np.full(graph.size, -1, dtype=np.int64)
    last: dict[int, int] = {}
    for op in range(graph.size):  # operations are numbered job by job
        m = int(graph.machine[op])
        if m in last:
            prev[op], nxt[last[m]] = last[m], op
        last[m] = op
    return prev, nxt


@pytest.mark.parametrize("name", ["ft06", "la01", "la16"])
def test_tabu_improves_a_poor_start_and_reports_the_checkers_makespan(instance, name):
    problem = read_problem(instance(name))
    graph = JobShopGraph.of(problem)
    start = job_after_job_orders(graph)
    start_makespan = graph.makespan(start)
    walker = Walker(graph, start, tabu_parameters(problem, {}), seed=1)
    for _ in range(20):
        walker.run(2_000)
    makespan, schedule = walker.best_schedule()
    assert makespan == walker.best
    assert check_schedule(problem, schedule, reported_objective=makespan) == []
    assert makespan < 0.8 * start_makespan, (makespan, start_makespan)
    assert makespan >= problem.best_known  # the best known values of these instances are optimal


def test_a_walk_that_proves_its_makespan_optimal_stops_at_the_lower_bound(instance):
    """la01's optimum equals its busiest machine's load: N5 runs out of moves there."""
    problem = read_problem(instance("la01"))
    graph = JobShopGraph.of(problem)
    walker = Walker(graph, job_after_job_orders(graph), tabu_parameters(problem, {}), seed=3)
    for _ in range(50):
        walker.run(2_000)
        if walker.optimal:
            break
    assert walker.optimal
    assert walker.best == graph.lower_bound == problem.best_known


def test_every_greedy_start_is_a_feasible_schedule():
    problem = JobShopProblem("zeros", (((0, 0), (1, 3)), ((1, 0), (0, 2)), ((0, 4), (1, 0))))
    graph = JobShopGraph.of(problem)
    for seed in range(5):
        orders = graph.greedy_orders(np.random.default_rng(seed))
        head = np.zeros(graph.size, dtype=np.int64)
        makespan = graph.makespan(orders, head)
        walker = Walker(graph, orders, tabu_parameters(problem, {}), seed)
        walker.run(100)
        best, schedule = walker.best_schedule()
        assert check_schedule(problem, schedule, best) == []
        assert best <= makespan


def test_unknown_or_bad_options_are_refused_by_name(instance):
    problem = read_problem(instance("ft06"))
    with pytest.raises(ValueError, match=r"unknown \['tenure'\]"):
        tabu_parameters(problem, {"tenure": 5})
    with pytest.raises(ValueError, match=r"options\.threads: expected an integer"):
        tabu_parameters(problem, {"threads": 0})
    assert arm_class_of(ArmSpec("t", "jobshop_tabu", options={"threads": 1})).thread_cap(
        ArmSpec("t", "jobshop_tabu", options={"threads": 1})
    ) == 1


@pytest.mark.slow
def test_tabu_and_cp_sat_exchange_incumbents_both_ways(ray_cluster, make_config, instance):
    """CP-SAT's incumbent starts the tabu arm's rounds (it only improves others' solutions here), and the
    tabu arm's better schedules become CP-SAT's hints (CP-SAT cuts its round as soon as one waits)."""
    config = make_config(
        solver__time_limit=12,
        solver__cpus_per_actor=1,
        solver__handover_interval=0,
        solver__arms=[
            {"name": "cpsat", "kind": "cp_sat", "options": {"num_workers": 1}},
            {"name": "tabu", "kind": "jobshop_tabu", "improve_only": True, "options": {"threads": 1}},
        ],
        output__plots=False,
    )
    result = SchedulingOptimizer(config).parallel_solve(read_problem(instance("la21")))
    stats = {s.name: s for s in result.arm_stats}
    assert result.feasible, result.violations
    assert stats["tabu"].taken_from.get("cpsat", 0) >= 1, result.summary()["arms"]
    assert stats["cpsat"].taken_from.get("tabu", 0) >= 1, result.summary()["arms"]
    assert stats["cpsat"].given == stats["tabu"].taken_from["cpsat"]
    assert stats["tabu"].given == stats["cpsat"].taken_from["tabu"]
    assert stats["tabu"].improvements >= 1 and "tabu" in result.incumbent_arms()
