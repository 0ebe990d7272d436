"""Child process of ``test_drain``: a spot preemption as Ray sees it, on a cluster of its own.

Run as ``python -m tests.train.drain_run CONFIG_JSON RESULT_JSON``. It starts a
two-node Ray cluster (a head without CPUs and one worker node with 2 CPUs, so
both training workers run on the worker node), trains with ``run_training`` and,
from a thread, once epoch 1 is logged:

1. asks GCS to drain the worker node with reason PREEMPTION and a deadline
   (what the autoscaler does on a spot notice; ``ray drain-node`` calls the same API),
2. waits for the checkpoint the notice makes the loop write (periodic ones are off),
3. adds a replacement node, then removes the drained one (the VM is reclaimed),
4. waits until the run has restarted (rank 0 logs ``start_epoch`` again).

Every step's time goes to RESULT_JSON with the run's summary, for the test to check; rank 0's optimizer
steps to RESULT_JSON with the suffix ``.steps`` (``mlray.train.step_log``), for ``bench.chaos``.
Its own cluster, because a draining node refuses new work: draining the test
session's single node would break every later test. Every process this starts
is stopped on the way out (``cluster.shutdown()``); the parent starts it as a
session leader, so the whole lot can also be killed at once as its process group.
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

from mlray.config import TrainJobConfig
from mlray.ray_private import drain_node_for_preemption
from mlray.storage import Storage
from mlray.storage.emulator import free_port
from mlray.train.runner import run_training
from mlray.train.step_log import StepLog
from tests.train.test_ray_training import checkpoint_names, epochs_logged, history, registered_checkpoints
from tests.waiting import wait_for

log = logging.getLogger("drain_run")

POLL_S = 0.1
NODE_CPUS = 2
DRAIN_DEADLINE_S = 60


def mlflow_run_id(mlflow_uri: str) -> str | None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return runs[0].info.run_id if len(runs) == 1 else None


class Spot(threading.Thread):
    """Drains the worker node during epoch 2, then replaces it, recording when each step happened."""

    def __init__(self, cluster: Cluster, node: Any, config: TrainJobConfig, result: dict[str, Any]):
        super().__init__(name="spot", daemon=True)
        self.cluster, self.node, self.config, self.result = cluster, node, config, result
        self.times: dict[str, float] = result.setdefault("times", {})
        self.training = threading.Event()  # set by main() while run_training runs
        self.start()

    def mark(self, step: str) -> float:
        self.times[step] = time.monotonic()
        log.warning("spot: %s", step)
        return self.times[step]

    def run(self) -> None:
        try:
            self.preempt()
        except BaseException as exc:  # noqa: BLE001 - reported in the result, and the run is stopped
            log.exception("spot: failed")
            self.result["errors"].append(f"{type(exc).__name__}: {exc}")
            if self.training.is_set():
                # End the run now rather than after all its epochs: the driver's SIGTERM handler stops it cleanly.
                os.kill(os.getpid(), signal.SIGTERM)

    def preempt(self) -> None:
        config, result = self.config, self.result
        storage, mlflow_uri = Storage(config.storage.uri), config.mlflow.tracking_uri
        wait_for(lambda: epochs_logged(mlflow_uri) >= 1, 300, "epoch 1 in MLflow", POLL_S)
        self.mark("epoch_1_logged")
        result["checkpoints_before_drain"] = checkpoint_names(storage, config.run_name)

        deadline_s = time.time() + DRAIN_DEADLINE_S
        self.mark("drain_requested")
        # the call the preStop hook (mlray.kuberay.drain) makes
        accepted, rejection = drain_node_for_preemption(self.cluster.address, self.node.node_id,
                                                        "spot preemption (test)", deadline_s)
        result["drain"] = {"accepted": accepted, "rejection": rejection, "deadline_ms": int(deadline_s * 1000)}
        assert accepted, f"GCS rejected the drain: {rejection}"
        result["draining_nodes"] = ray._private.state.state.get_draining_nodes()

        names = wait_for(lambda: checkpoint_names(storage, config.run_name), 60, "the checkpoint of the notice",
                         POLL_S)
        self.mark("checkpoint_written")
        wait_for(lambda: any(n in registered_checkpoints(config) for n in names), 60,
                 "Ray Train to register the notice checkpoint", POLL_S)
        self.mark("checkpoint_registered")

        replacement = self.cluster.add_node(num_cpus=NODE_CPUS)
        result["replacement_node"] = replacement.node_id
        self.mark("replacement_added")
        result["checkpoints_at_removal"] = checkpoint_names(storage, config.run_name)
        result["epochs_logged_at_removal"] = epochs_logged(mlflow_uri)
        self.mark("drained_node_removal_started")
        self.cluster.remove_node(self.node)
        self.mark("drained_node_removed")

        run_id = wait_for(lambda: mlflow_run_id(mlflow_uri), 30, "the MLflow run", POLL_S)
        wait_for(lambda: len(history(mlflow_uri, run_id, "start_epoch")) >= 2, 180,
                 "the restarted workers to log start_epoch", POLL_S)
        self.mark("resumed")


def node_states() -> dict[str, dict[str, Any]]:
    return {n["NodeID"]: {"alive": n["Alive"], "cpus": n.get("Resources", {}).get("CPU", 0),
                          "death_reason": n.get("DeathReason"), "death_message": n.get("DeathReasonMessage")}
            for n in ray.nodes()}


def main(config_path: Path, result_path: Path) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: dict[str, Any] = {"errors": []}
    # shutdown_at_exit=False: Ray's exit hooks install signal handlers, which only the main thread may do,
    # and the spot thread adds a node. ``finally`` below stops the cluster; the parent kills the process group.
    cluster = Cluster(initialize_head=True, shutdown_at_exit=False, head_node_args={
        "num_cpus": 0,  # the training workers can only run on worker nodes
        "include_dashboard": False,
        "dashboard_agent_listen_port": free_port(),  # not Ray's fixed 52365, which other clusters here use
    })
    try:
        node = cluster.add_node(num_cpus=NODE_CPUS)
        result.update(head_node=cluster.head_node.node_id, drained_node=node.node_id)
        config = TrainJobConfig.model_validate(json.loads(config_path.read_text()))
        config = config.model_copy(update={"ray": config.ray.model_copy(update={"address": cluster.address})})
        started = time.monotonic()
        spot = Spot(cluster, node, config, result)
        spot.training.set()
        try:
            result["summary"] = run_training(config, callbacks=[StepLog(str(result_path.with_suffix(".steps")))])
        finally:
            spot.training.clear()
        result["times"]["run_finished"] = time.monotonic()
        spot.join(timeout=5)
        if spot.is_alive():
            result["errors"].append("the spot thread was still waiting when the run finished")
        result["driver_node"] = ray.get_runtime_context().get_node_id()
        result["nodes"] = node_states()
        result["times"] = {step: round(at - started, 2) for step, at in result["times"].items()}
    except BaseException as exc:  # noqa: BLE001 - the parent reads the result
        log.exception("drain run failed")
        result["errors"].append(f"{type(exc).__name__}: {exc}")
    finally:
        result_path.write_text(json.dumps(result, indent=2, default=str))
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
