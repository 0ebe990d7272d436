"""Every private Ray API that mlray touches, in one place.

Ray offers no public API for these; each function says what mlray needs it for. They were
checked against ``CHECKED_RAY_VERSION`` (the pin in pyproject.toml), and
``tests/test_ray_private.py`` fails on any other Ray until each one is checked again. Tests may
use Ray internals to observe a cluster; library code goes through here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CHECKED_RAY_VERSION = "2.60.0"

WorkerExit = Callable[..., Any]


def checkpoint_manager_snapshot_filename() -> str:
    """The file in a run's storage folder where Ray Train V2 lists the checkpoints it registered.

    Pruning must know which checkpoint folders Ray Train still counts on; only this snapshot says.
    """
    from ray.train.v2._internal.constants import CHECKPOINT_MANAGER_SNAPSHOT_FILENAME

    return CHECKPOINT_MANAGER_SNAPSHOT_FILENAME


def train_reports_pending() -> bool:
    """Whether this Ray Train worker holds reports its controller has not taken yet.

    The controller takes one report per worker per poll (``health_check_interval_s``) from a queue of
    one; a report made while one is pending waits for that poll (a SYNC one on the training thread), so
    step checkpoints are registered only when nothing is pending (``mlray.train.session``).
    """
    from ray.train.v2._internal.execution.context import get_train_context

    context = get_train_context()
    return (context.current_report_index != context.report_call_index
            or not context.execution_context.result_queue.empty())


def preemption_noticed_here() -> bool:
    """Whether Ray Train's preemption watcher has told this worker that a node of its group is draining.

    The local half of ``ray.train.get_preemption_info()``, without its barrier (a round trip through Ray
    Train's synchronization actor): the training loop reads it at every stop check and agrees on it in the
    collective it makes there anyway, so a notice is seen within ``stop_check_batches`` batches.
    """
    from ray.train.v2._internal.execution.context import get_train_context

    return get_train_context().preemption_context.preemption_info is not None


def worker_exit() -> WorkerExit:
    """What a Ray worker calls from its SIGTERM handler to exit at once."""
    import ray._private.worker as ray_worker

    return ray_worker.raise_sys_exit_with_custom_error_message


def set_worker_exit(handler: WorkerExit) -> None:
    """Replace the worker's SIGTERM exit (``worker_exit``): the handler looks it up at call time,
    so a training worker can checkpoint before it goes (``mlray.train.control``)."""
    import ray._private.worker as ray_worker

    ray_worker.raise_sys_exit_with_custom_error_message = handler


@dataclass(frozen=True)
class NodeRecord:
    node_id: str  # hex
    ip: str  # where its raylet listens
    alive: bool


def node_records(gcs_address: str, timeout_s: float) -> list[NodeRecord]:
    """Every node the GCS knows, dead ones included, asked of the GCS directly.

    A pod's preStop hook knows only the GCS address and its own IP; ``ray.util.state`` would need
    the dashboard and a driver connection.
    """
    from ray._raylet import GcsClient
    from ray.core.generated import gcs_pb2

    nodes = GcsClient(address=gcs_address).get_all_node_info(timeout=timeout_s)
    alive = gcs_pb2.GcsNodeInfo.ALIVE
    return [NodeRecord(node_id.hex(), info.node_manager_address, info.state == alive)
            for node_id, info in nodes.items()]


def drain_node_for_preemption(
    gcs_address: str, node_id_hex: str, message: str, deadline_s: float
) -> tuple[bool, str]:
    """Ask the GCS to drain a node because it is being preempted, by ``deadline_s`` (epoch seconds):
    (accepted, rejection reason). The call behind Ray's hidden ``ray drain-node``; no public API has it."""
    from ray._raylet import GcsClient
    from ray.core.generated import autoscaler_pb2

    reason = autoscaler_pb2.DrainNodeReason.Value("DRAIN_NODE_REASON_PREEMPTION")
    accepted, rejection = GcsClient(address=gcs_address).drain_node(node_id_hex, reason, message,
                                                                    int(deadline_s * 1000))
    return bool(accepted), str(rejection)


def serve_batch_settings(batched: Any) -> tuple[int, float]:
    """``(max_batch_size, batch_wait_timeout_s)`` a ``serve.batch`` wrapper runs with now.

    Serve sets them publicly (``set_max_batch_size``, ``set_batch_wait_timeout_s``, applied by a replica's
    ``reconfigure``) but reads them back only through private getters; ``GET /v1/models`` reports them and the
    call coalescer sizes its model calls by the first (``mlray.serve.prediction.service``).
    """
    return batched._get_max_batch_size(), batched._get_batch_wait_timeout_s()


def multiplexed_models(holder: Any) -> dict[str, Any]:
    """The models a ``serve.multiplexed`` function holds on this replica, by model id, least recently used
    first; empty before its first call.

    Serve keeps them in a private wrapper that it attaches to ``holder`` on the first call (the decorated
    function itself, or the instance for a method); ``GET /v1/models`` lists them as ``loaded_here``.
    """
    wrapper = getattr(holder, "__serve_multiplex_wrapper", None)
    return dict(wrapper.models) if wrapper is not None else {}


def serve_http_host() -> str:
    """The host Serve's HTTP proxies bind, asked from inside a replica (raises outside Serve).

    Only Serve's private controller client has the cluster's ``http_options``; a replica refuses to serve
    without API keys unless this is loopback (``mlray.serve.api.auth``).
    """
    from ray.serve.context import _get_global_client

    return _get_global_client().http_config.host
