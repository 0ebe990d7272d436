"""Child process of ``test_elastic``: a node lost for good, then capacity back, on a cluster of its own.

Run as ``python -m tests.train.elastic_run CONFIG_JSON RESULT_JSON``. It starts a
three-node Ray cluster (a head without CPUs, two worker nodes with one CPU each,
so each of the two training workers has a node of its own), trains with
``num_workers: [1, 2]`` and, from a thread:

1. once both workers have taken steps, removes one worker node without notice,
2. waits until training goes on with one worker (rank 0's step log says so),
3. adds a node back and waits until training runs on two workers again,
4. stops the run through the driver's SIGTERM handler (it checkpoints and returns).

Times go to RESULT_JSON for the test to check. Its own cluster, because nodes come
and go: the test session's single node must stay. The parent starts it as a session
leader, so its whole process group can be killed at once.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

from mlray.cluster.runtime import init_ray
from mlray.config import TrainJobConfig
from mlray.storage.emulator import free_port
from mlray.train.control import start_run_control
from mlray.train.runner import run_training
from mlray.train.step_log import StepLog, read_step_log, step_log_starts
from tests.waiting import wait_for

log = logging.getLogger("elastic_run")
POLL_S = 0.1


def first_step_at(log_path: Path, world: int, after_start: int) -> float | None:
    """When rank 0 of the first start with ``world`` workers, after start number ``after_start``, took a step."""
    starts = step_log_starts(log_path)
    parts = read_step_log(log_path)
    taken = [(w, first) for _, w, first in starts if first is not None]  # the starts read_step_log keeps
    for index, (w, _) in enumerate(taken):
        if index >= after_start and w == world:
            return parts[index][0][2]
    return None


def latest_segment(log_path: Path) -> tuple[int, int]:
    """(first, last) step of the latest start that took any; (0, 0) before the first step."""
    parts = read_step_log(log_path)
    return (parts[-1][0][0], parts[-1][-1][0]) if parts else (0, 0)


def steps_since_start(log_path: Path) -> int:
    first, last = latest_segment(log_path)
    return last - first + 1 if last else 0


class NodeLoss(threading.Thread):
    def __init__(self, cluster: Cluster, node: Any, log_path: Path, result: dict[str, Any]):
        super().__init__(name="node-loss", daemon=True)
        self.cluster, self.node, self.log_path, self.result = cluster, node, log_path, result
        self.start()

    def run(self) -> None:
        try:
            self.shrink_then_grow()
        except BaseException as exc:  # noqa: BLE001 - reported in the result
            log.exception("node loss: failed")
            self.result["errors"].append(f"{type(exc).__name__}: {exc}")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the driver checkpoints and returns

    def started_with(self, world: int) -> int:
        return sum(1 for _, w, first in step_log_starts(self.log_path) if w == world and first is not None)

    def shrink_then_grow(self) -> None:
        result, log_path = self.result, self.log_path
        wait_for(lambda: self.started_with(2) and latest_segment(log_path)[1] >= 60, 300, "two workers training",
                 POLL_S)
        starts_before = len(read_step_log(log_path))
        result["removed_at"] = time.time()
        self.cluster.remove_node(self.node, allow_graceful=False)
        log.warning("node removed")
        shrunk = wait_for(lambda: first_step_at(log_path, 1, starts_before), 180, "training on one worker", POLL_S)
        result["continued_on_one_after_s"] = shrunk - result["removed_at"]
        starts_shrunk = len(read_step_log(log_path))
        wait_for(lambda: steps_since_start(log_path) >= 30, 120, "steps on one worker", POLL_S)
        result["added_at"] = time.time()
        self.cluster.add_node(num_cpus=1)
        log.warning("node added")
        grown = wait_for(lambda: first_step_at(log_path, 2, starts_shrunk), 240, "training on two workers again",
                         POLL_S)
        result["grew_back_after_s"] = grown - result["added_at"]
        wait_for(lambda: steps_since_start(log_path) >= 30, 120, "steps on two workers", POLL_S)


def control_actors_on_driver_node(count: int = 6) -> list[bool]:
    """Where ``start_run_control`` puts a run's control actor, ``count`` times: it must never be a worker
    node, which the node loss below would take with it (the head has no CPUs, where Ray liked to spill it)."""
    driver_node = ray.get_runtime_context().get_node_id()
    actors = [start_run_control() for _ in range(count)]
    nodes = ray.get([actor.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id())
                     for actor in actors])
    for actor in actors:
        ray.kill(actor)
    return [node == driver_node for node in nodes]


def main(config_path: Path, result_path: Path) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: dict[str, Any] = {"errors": []}
    cluster = Cluster(initialize_head=True, shutdown_at_exit=False, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "dashboard_agent_listen_port": free_port()})
    try:
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        config = TrainJobConfig.model_validate(json.loads(config_path.read_text()))
        config = config.model_copy(update={"ray": config.ray.model_copy(update={"address": cluster.address})})
        init_ray(config.ray)
        result["control_on_driver_node"] = control_actors_on_driver_node()
        log_path = result_path.with_suffix(".steps")
        loss = NodeLoss(cluster, nodes[1], log_path, result)
        result["summary"] = run_training(config, callbacks=[StepLog(str(log_path))])
        loss.join(timeout=10)
        result["starts"] = step_log_starts(log_path)
    except BaseException as exc:  # noqa: BLE001 - the parent reads the result
        log.exception("elastic run failed")
        result["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        result_path.write_text(json.dumps(result, indent=2, default=str))
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
