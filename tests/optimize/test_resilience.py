"""Arm actors dying mid-solve, and a killed driver resumed from the checkpointed incumbent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ray

from mlray.cluster.local import client_env
from mlray.optimize import SchedulingOptimizer, read_problem
from tests.optimize.solving import BackgroundSolve, checkpoint_file, live_actors
from tests.waiting import wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def live_arm_actors(dashboard_url: str, run_name: str) -> dict[str, str]:
    """Arm name -> Ray actor name, for the ALIVE arm actors of one run."""
    return live_actors(dashboard_url, run_name, "ArmActor")


def test_killed_arms_are_restarted_or_dropped_and_the_solve_goes_on(ray_cluster, instance, make_config):
    problem = read_problem(instance("jsp/ft10"))
    config = make_config(
        run_name="kill-arms",
        **{"solver.num_actors": 3, "solver.max_restarts": 1, "solver.time_limit": 12, "output.plots": False},
    )
    url = ray_cluster.dashboard_url
    solve = BackgroundSolve(SchedulingOptimizer(config), problem)
    arms = wait_for(
        lambda: len(live_arm_actors(url, "kill-arms")) == 3 and live_arm_actors(url, "kill-arms"),
        120,
        "3 arms",
    )
    wait_for(lambda: checkpoint_file(config).exists(), 60, "a first incumbent")
    ray.kill(ray.get_actor(arms["cp_sat-0"]), no_restart=False)  # Ray restarts it, run() is retried
    ray.kill(ray.get_actor(arms["cp_sat-1"]), no_restart=True)  # gone for good
    result = solve.result(timeout=120)
    stats = {s.name: s for s in result.arm_stats}
    assert stats["cp_sat-1"].ended_by == "dropped" and stats["cp_sat-1"].error, stats
    assert stats["cp_sat-0"].restarted and stats["cp_sat-0"].error is None, stats
    assert stats["jobshop_tabu-2"].error is None and stats["jobshop_tabu-2"].rounds >= 1, stats
    assert result.feasible and result.status in ("time_limit", "optimal")


def test_killed_driver_resumes_from_the_checkpointed_incumbent(ray_cluster, instance, make_config):
    path = instance("jsp/ft20")
    config = make_config(run_name="resume-me", **{"checkpoint.interval": 0.0})
    command = [
        sys.executable,
        "-m",
        "jobs.optimize",
        "--config",
        "configs/optimize.yaml",
        "--set",
        f"problem.path={path}",
        "--set",
        f"run_name={config.run_name}",
        "--set",
        f"storage.uri={config.storage.uri}",
        "--set",
        f"output.dir={config.output.dir}",
        "--set",
        "mlflow.enabled=false",
        "--set",
        "solver.time_limit=120",
    ]
    env = client_env()
    env["RAY_ADDRESS"] = ray_cluster.gcs_address
    driver = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: checkpoint_file(config).exists(), 120, "the first checkpoint")
    finally:
        driver.kill()  # SIGKILL: no cleanup, like a lost spot node
        driver.wait(timeout=30)
    checkpointed = json.loads(checkpoint_file(config).read_text())["objective"]
    resumed = SchedulingOptimizer(
        config.model_copy(update={"solver": config.solver.model_copy(update={"time_limit": 2})})
    )
    result = resumed.parallel_solve(read_problem(path))
    assert result.resumed_from == checkpointed
    assert result.history[0] == {
        "time": result.history[0]["time"],
        "objective": checkpointed,
        "arm": "checkpoint",
    }
    assert result.objective <= checkpointed
    assert result.feasible
