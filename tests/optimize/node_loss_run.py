"""Child process of ``test_node_loss`` (and ``bench/chaos_optimize.py``): the node running the leading arm
is lost mid-solve, on a multi-node local cluster of its own.

Run as ``python -m tests.optimize.node_loss_run CONFIG_JSON RESULT_JSON``. It starts a head without CPUs
(the driver and the incumbent store, pinned to the head) and two worker nodes with one CPU each, so each of
the two arms (CP-SAT and tabu, the default job-shop portfolio) has a node of its own. It solves with
``SchedulingOptimizer`` and, from the main thread:

1. waits until the race is over and the CPUs went to the leading arm (the one holding the incumbent),
2. removes that arm's node without notice (its raylet and workers are killed),
3. measures the seconds until the surviving arm is given the CPUs (the store's allocation history).

The killed arm's actor has a restart left but no node with a free CPU. Here Ray fails its running call
(``ActorUnavailableError``, a refused connection) within seconds and the portfolio drops it; where the
node just vanishes (no refusal, Ray's health checks take longer), the portfolio's own watch
(``solver.lost_after``) takes it for lost first. Numbers go to RESULT_JSON for the parent to check.

Its own cluster, because nodes come and go: the test session's single node must stay. The parent starts
it as a session leader, so its whole process group can be killed at once.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from mlray.config.optimize import OptimizeJobConfig
from mlray.optimize import SchedulingOptimizer, read_problem
from mlray.storage.emulator import free_port
from tests.optimize.solving import BackgroundSolve, resplit_to_one_of, split_to_the_leader
from tests.waiting import wait_for

log = logging.getLogger("node_loss_run")
POLL_S = 0.1
SOLVE_TIMEOUT_S = 240


def node_loss_config(workdir: Path, run_name: str = "node-loss", time_limit: float = 24) -> OptimizeJobConfig:
    """ta01 (not proven optimal in seconds, so the search is still on after the loss), the default two-arm
    portfolio, the race over after 15 % of the time; defaults otherwise (``lost_after`` included)."""
    from mlray.optimize import instances

    return OptimizeJobConfig.model_validate({
        "run_name": run_name,
        "problem": {"path": str(instances.path("jsp/ta01"))},
        "storage": {"uri": str(workdir / "storage")},
        "output": {"dir": str(workdir / "out"), "plots": False},
        "mlflow": {"enabled": False},
        "solver": {"num_actors": 2, "time_limit": time_limit, "race_fraction": 0.15},
    })


def kill_the_leaders_node(
    cluster: Cluster, workers: list[Any], run_name: str, result: dict[str, Any]
) -> None:
    wait_for(ray.is_initialized, 120, "the solve to join the cluster", POLL_S)
    report = wait_for(lambda: split_to_the_leader(run_name), 120, "the CPUs split to the leading arm", POLL_S)
    leader, node_id = report.incumbent.arm, report.arm_nodes[report.incumbent.arm]
    node = next(n for n in workers if n.node_id == node_id)  # StopIteration: the leader is on the head
    result.update(leader=leader, leader_node=node_id, objective_before=report.objective,
                  head_node=cluster.head_node.node_id, store_node=report.node_id,
                  store_incarnation_before=report.incarnation)
    killed_at = time.monotonic()
    cluster.remove_node(node, allow_graceful=False)
    result["remove_node_s"] = round(time.monotonic() - killed_at, 3)
    log.warning("removed node %s, which ran the leading arm %s (objective %s)", node_id[:12], leader,
                report.objective)
    survivors = [arm for arm in report.arm_nodes if arm != leader]
    report = wait_for(lambda: resplit_to_one_of(run_name, survivors), 60, "the CPUs to a survivor", POLL_S)
    result["continued_after_s"] = round(time.monotonic() - killed_at, 3)
    result["objective_at_resplit"] = report.objective
    result["store_incarnation_after"] = report.incarnation


def main(config_path: Path, result_path: Path) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: dict[str, Any] = {"errors": []}
    cluster: Cluster | None = None
    try:
        cluster = Cluster(initialize_head=True, shutdown_at_exit=False, head_node_args={
            "num_cpus": 0, "include_dashboard": False, "dashboard_agent_listen_port": free_port()})
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        config = OptimizeJobConfig.model_validate(json.loads(config_path.read_text()))
        ray_section = config.ray.model_copy(update={"address": cluster.address})
        config = config.model_copy(update={"ray": ray_section})
        solve = BackgroundSolve(SchedulingOptimizer(config), read_problem(config.problem.path))
        try:
            kill_the_leaders_node(cluster, workers, config.run_name, result)
        finally:
            outcome = solve.result(timeout=SOLVE_TIMEOUT_S)  # the solve's own error, if any, wins
        result["summary"] = outcome.summary()
        result["allocation_history"] = outcome.allocation_history
        result["history"] = outcome.history
        result["nodes"] = {s.name: s.node_id for s in outcome.arm_stats}
    except BaseException as exc:  # noqa: BLE001 - the parent reads the result
        log.exception("node loss run failed")
        result["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        result_path.write_text(json.dumps(result, indent=2, default=str))
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
