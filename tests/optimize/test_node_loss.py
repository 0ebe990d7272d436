"""Solving through node loss: on a multi-node local cluster, the node running the leading arm is removed
without notice mid-solve. The search goes on with the surviving arm, which gets the CPUs; the incumbent
store (on the head) keeps the incumbent, and the answer is feasible and no worse than before the loss.
In a child process with a cluster of its own (``tests/optimize/node_loss_run.py``): nodes come and go,
which the session's single-node cluster must not see. And a frozen leader (its process stopped, as a node
that vanishes without refusing connections): no Ray call fails, its silence alone makes it lost."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import pytest

from mlray.optimize import SchedulingOptimizer, read_problem
from tests.optimize.node_loss_run import node_loss_config
from tests.optimize.solving import (
    BackgroundSolve,
    actor_pid,
    live_actors,
    resplit_to_one_of,
    split_to_the_leader,
)
from tests.train.test_drain import run_child, tail
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
CHILD_TIMEOUT_S = 300
CONTINUED_WAIT_S = 60  # how long the test waits; how fast it continues is measured by bench/chaos_optimize.py


def test_losing_the_leading_arms_node_keeps_the_incumbent_and_the_survivor_takes_the_cpus(tmp_path):
    config = node_loss_config(tmp_path)
    config_path, result_path, log_path = (tmp_path / f for f in ("config.json", "result.json", "child.log"))
    config_path.write_text(json.dumps(config.model_dump(mode="json")))
    run_child(config_path, result_path, log_path, module="tests.optimize.node_loss_run",
              timeout_s=CHILD_TIMEOUT_S)
    assert result_path.exists(), tail(log_path)
    result = json.loads(result_path.read_text())
    context = f"{json.dumps(result, indent=1)}\n{tail(log_path)}"
    assert result["errors"] == [], context
    summary, leader = result["summary"], result["leader"]
    arms = summary["arms"]
    (survivor,) = [name for name in arms if name != leader]
    # The store lived on the head through the loss: never restarted, nothing lost.
    assert result["store_node"] == result["head_node"] != result["leader_node"], context
    assert result["store_incarnation_before"] == result["store_incarnation_after"], context
    assert summary["store_restarts"] == 0, context
    assert summary["feasible"] and summary["objective"] <= result["objective_before"], context
    # The leader held every CPU when its node went; the survivor, parked until then, got them back.
    # Dropped when Ray fails its call (a refused connection), lost when it goes silent first.
    assert arms[leader]["ended_by"] in ("dropped", "lost") and arms[leader]["error"], context
    assert arms[survivor]["threads"] == [1, 0, 2] and arms[survivor]["error"] is None, context
    assert result["allocation_history"][-1]["threads"] == {survivor: 2}, context
    print(f"node of {leader} lost at objective {result['objective_before']}: {survivor} had the CPUs "
          f"{result['continued_after_s']:.1f} s later; final {summary['objective']} ({summary['status']})")


def test_a_frozen_leading_arm_is_taken_for_lost_and_its_cpus_go_to_the_other_arm(
    ray_cluster, instance, make_config
):
    """A node that vanishes without refusing connections (or a frozen process) fails no Ray call for a
    while: the leader's process is stopped (SIGSTOP), so only its silence tells. After ``lost_after`` the
    other arm gets the CPUs, and at the end the silent arm is killed at once, not after ``stop_grace``."""
    run_name, time_limit = "frozen-leader", 14
    config = make_config(run_name=run_name, **{"solver.num_actors": 2, "solver.time_limit": time_limit,
                                              "solver.race_fraction": 0.15, "solver.lost_after": 5,
                                              "output.plots": False})
    solve = BackgroundSolve(SchedulingOptimizer(config), read_problem(instance("jsp/ta01")))
    report = wait_for(lambda: split_to_the_leader(run_name), 120, "the CPUs split to the leading arm")
    leader, before = report.incumbent.arm, report.objective
    (survivor,) = [arm for arm in report.arm_nodes if arm != leader]
    url = ray_cluster.dashboard_url
    pid = actor_pid(url, live_actors(url, run_name, "ArmActor")[leader])
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        wait_for(lambda: resplit_to_one_of(run_name, [survivor]), CONTINUED_WAIT_S,
                 "the CPUs split to the other arm")
        continued_after = time.monotonic() - frozen_at
        result = solve.result(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # it was killed while stopped: let it go
    stats = {s.name: s for s in result.arm_stats}
    assert stats[leader].ended_by == "lost" and "no poll" in stats[leader].error, stats
    assert stats[survivor].threads == [1, 0, 2] and stats[survivor].error is None, stats
    assert any(f"arm {leader} lost" in i["what"] for i in result.incidents), result.incidents
    assert result.feasible and result.objective <= before
    assert continued_after >= config.solver.lost_after  # its silence, not an error, told
    # Killed at the stop, not after stop_grace (10 s) of waiting for an arm that cannot hear it.
    assert result.solve_seconds < time_limit + config.solver.stop_grace / 2, result.solve_seconds
    print(f"{leader} frozen at objective {before}: {survivor} had the CPUs {continued_after:.1f} s later; "
          f"final {result.objective}")
