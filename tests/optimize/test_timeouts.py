"""Each limit ends a solve on its own, gracefully, with its own status and a checked solution."""

from __future__ import annotations

import pytest

from mlray.optimize import SchedulingOptimizer, read_problem

ONE_ARM = [{"name": "solo", "kind": "cp_sat"}]


@pytest.fixture
def ft10(instance):
    return read_problem(instance("jsp/ft10"))


def solve(problem, config):
    result = SchedulingOptimizer(config).parallel_solve(problem)
    assert result.feasible, result.violations
    return result


def test_time_limit(ray_cluster, ft10, make_config):
    result = solve(ft10, make_config(**{"solver.time_limit": 2, "output.plots": False}))
    assert result.status == "time_limit"
    assert all(s.ended_by == "time_limit" for s in result.arm_stats)


def test_total_runtime(ray_cluster, instance, make_config):
    # ta21 (20x20) is not proven optimal this fast (ta01, 15x15, was in ~25 s on a quieter machine);
    # the total includes actor start-up (slow on 2 busy cores).
    config = make_config(**{"solver.time_limit": 600, "timeouts.total_runtime": 40, "output.plots": False})
    result = solve(read_problem(instance("jsp/ta21")), config)
    assert result.status == "total_runtime"


def test_no_improvement(ray_cluster, ft10, make_config):
    # A threshold of 90% means nothing after the first solution counts as progress.
    config = make_config(
        **{
            "solver.time_limit": 600,
            "timeouts.no_improvement": 1.0,
            "timeouts.improvement.threshold": 0.9,
            "output.plots": False,
        }
    )
    result = solve(ft10, config)
    assert result.status == "no_improvement"


def test_iteration_limit_ends_rounds_not_the_solve(ray_cluster, ft10, make_config):
    config = make_config(
        **{"solver.arms": ONE_ARM, "solver.time_limit": 4, "timeouts.round": 1, "output.plots": False}
    )
    result = solve(ft10, config)
    solo = result.arm_stats[0]
    assert result.status == "time_limit"
    assert solo.rounds >= 3
    assert solo.round_ends.get("iteration", 0) >= 2
