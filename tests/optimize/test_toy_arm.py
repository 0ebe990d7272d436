"""docs/architecture.md's "a solver arm": ``toy_arm.py`` is the whole plug-in, a config line names it."""

from __future__ import annotations

import random

from mlray.optimize import SchedulingOptimizer, read_problem
from mlray.optimize.checkers import check_solution
from mlray.optimize.problems import makespan

from .toy_arm import dispatch

TOY_ARM = "tests.optimize.toy_arm:RandomDispatchArm"


def test_dispatch_schedules_pass_the_checker(instance):
    problem = read_problem(instance("jsp/ft10"))
    rng = random.Random(3)
    for _ in range(20):
        schedule = dispatch(problem, rng)
        assert check_solution(problem, schedule) == []
        assert makespan(problem, schedule) >= problem.best_known


def test_an_arm_named_by_config_alone_solves(ray_cluster, instance, make_config):
    problem = read_problem(instance("jsp/ft06"))
    config = make_config(**{"solver.time_limit": 3,
                            "solver.arms": [{"name": "toy", "kind": TOY_ARM, "seed": 1}]})
    result = SchedulingOptimizer(config).parallel_solve(problem)
    assert result.feasible and check_solution(problem, result.solution) == [], result.violations
    [stats] = result.arm_stats
    assert (stats.name, stats.kind) == ("toy", TOY_ARM) and stats.improvements >= 1 and stats.rounds >= 1
    assert stats.best_objective == result.objective >= problem.best_known
