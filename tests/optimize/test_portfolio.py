"""Real portfolios on the session Ray cluster: optimality, sharing, quality, MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from mlray.optimize import RoutingOptimizer, SchedulingOptimizer, check_solution, read_problem


def assert_checked(result, problem) -> None:
    assert result.feasible, result.violations
    assert check_solution(problem, result.solution) == []


def test_ft06_is_proven_optimal_with_plots_and_mlflow(ray_cluster, instance, make_config, mlflow_uri):
    problem = read_problem(instance("jsp/ft06"))
    config = make_config(
        **{"mlflow.enabled": True, "mlflow.tracking_uri": mlflow_uri, "mlflow.experiment": "opt-test"}
    )
    result = SchedulingOptimizer(config).parallel_solve(problem)
    assert result.status == "optimal"
    assert result.objective == result.best_bound == 55
    assert result.gap() == 0 and result.optimality_gap == 0
    assert_checked(result, problem)
    assert [h["objective"] for h in result.history] == sorted(
        (h["objective"] for h in result.history), reverse=True
    )
    for name in ("gantt", "history"):
        assert Path(result.plots[name]).read_bytes()[:4] == b"\x89PNG"
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    logged = client.get_metric_history(result.mlflow_run_id, "incumbent")
    assert [m.value for m in sorted(logged, key=lambda m: m.step)] == [h["objective"] for h in result.history]
    run = client.get_run(result.mlflow_run_id)
    assert run.data.metrics["objective"] == 55 and run.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(result.mlflow_run_id, "plots")} == {
        "plots/gantt.png",
        "plots/history.png",
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["la16", "la17", "la18", "la19", "la20"])
def test_la16_to_la20_reach_their_optimum(ray_cluster, instance, make_config, name):
    problem = read_problem(instance(f"jsp/{name}"))
    result = SchedulingOptimizer(
        make_config(**{"solver.time_limit": 90, "output.plots": False})
    ).parallel_solve(problem)
    assert_checked(result, problem)
    assert result.objective == problem.best_known
    assert result.status == "optimal"


def test_cvrp_a_n32_k5_within_one_percent(ray_cluster, instance, make_config):
    problem = read_problem(instance("cvrp/A-n32-k5.vrp"))
    result = RoutingOptimizer(make_config(**{"solver.time_limit": 8})).parallel_solve(problem)
    assert_checked(result, problem)
    assert result.gap(784) <= 0.01
    assert Path(result.plots["routes"]).is_file()
    assert result.allocation_history == []  # two single-threaded PyVRP arms keep one CPU each
    anchor = next(s for s in result.arm_stats if s.name == "pyvrp-0")
    assert anchor.handovers == 0  # the default portfolio's first arm never starts from another's incumbent


def test_solomon_c101_feasible(ray_cluster, instance, make_config):
    problem = read_problem(instance("vrptw/C101.txt"))
    result = RoutingOptimizer(make_config(**{"solver.time_limit": 8, "output.plots": False})).parallel_solve(
        problem
    )
    assert_checked(result, problem)
    assert result.status == "time_limit"
    assert result.objective >= problem.best_known - 1e-9


def test_improver_arm_only_improves_from_the_constructor_arms_incumbent(ray_cluster, instance, make_config):
    """'build' can only construct (one solution, no search); 'improve' never constructs.
    Every improvement below the first solution must come from 'improve' working on 'build's incumbent."""
    problem = read_problem(instance("cvrp/A-n32-k5.vrp"))
    arms = [
        {
            "name": "build",
            "kind": "routing",
            "options": {"first_solution": "PATH_CHEAPEST_ARC", "solution_limit": 1},
        },
        {"name": "improve", "kind": "pyvrp", "improve_only": True},
    ]
    config = make_config(**{"solver.arms": arms, "solver.time_limit": 6, "output.plots": False})
    result = RoutingOptimizer(config).parallel_solve(problem)
    assert_checked(result, problem)
    arms_in_order = result.incumbent_arms()
    assert arms_in_order[0] == "build"
    assert "improve" in arms_in_order[1:]
    assert result.objective < result.history[0]["objective"]
    stats = {s.name: s for s in result.arm_stats}
    assert stats["improve"].handovers >= 1 and stats["improve"].improvements >= 1
