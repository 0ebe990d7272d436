"""``preStop`` hook of Ray worker pods: drain this Ray node before Kubernetes stops it.

    python -m mlray.kuberay.drain --deadline-seconds 25

Kubernetes runs the hook when a pod is deleted (spot preemption, scale-down,
node upgrade) and sends SIGTERM only after it returns. The hook tells the GCS
that this node is being preempted, with a deadline, so that Ray stops placing
work on it and Ray Train's preemption handling can checkpoint; it then waits
until the raylet has drained and exited, or the deadline passes. KubeRay runs
``ray start`` under a shell, so Ray's own SIGTERM drain may never see the signal.

It uses the same GCS calls as Ray's hidden ``ray drain-node`` command, which
needs a node id that a pod does not know; the pod knows its IP. The node is
looked up in the GCS too, not through the public ``ray.util.state.list_nodes``:
that goes through the dashboard's HTTP API (and its auth token) on the head,
one more service the dying pod would need to reach within its grace period.
Both private calls sit in ``mlray.ray_private``, checked on every Ray upgrade.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping

from mlray.ray_private import NodeRecord, drain_node_for_preemption, node_records

log = logging.getLogger("mlray.kuberay.drain")

GCS_PORT = 6379
RPC_TIMEOUT_S = 5


def gcs_address(environ: Mapping[str, str]) -> str | None:
    """Where the GCS is: RAY_ADDRESS if set, else KubeRay's head service name in worker pods."""
    if environ.get("RAY_ADDRESS"):
        return environ["RAY_ADDRESS"]
    if environ.get("FQ_RAY_IP"):
        return f"{environ['FQ_RAY_IP']}:{GCS_PORT}"
    return None


def node_id_for_ip(nodes: Iterable[NodeRecord], ip: str) -> str | None:
    """Hex id of the alive node whose raylet listens on ``ip`` (a pod IP may also name dead earlier nodes)."""
    return next((node.node_id for node in nodes if node.ip == ip and node.alive), None)


def drain(address: str, node_ip: str, deadline_seconds: int, poll_seconds: float = 1.0) -> str:
    node_id = node_id_for_ip(node_records(address, RPC_TIMEOUT_S), node_ip)
    if node_id is None:
        return f"no alive Ray node at {node_ip}: nothing to drain"
    deadline = time.time() + deadline_seconds
    accepted, rejection = drain_node_for_preemption(address, node_id, "Kubernetes is stopping the pod (preStop)",
                                                    deadline)
    if not accepted:
        return f"drain of {node_id} rejected: {rejection}"
    while time.time() < deadline:
        # The raylet exits by itself once it is draining and idle.
        if node_id_for_ip(node_records(address, RPC_TIMEOUT_S), node_ip) is None:
            return f"node {node_id} drained"
        time.sleep(poll_seconds)
    return f"node {node_id} still busy at the deadline ({deadline_seconds} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlray.kuberay.drain")
    parser.add_argument(
        "--deadline-seconds", type=int, required=True, help="the spot checkpoint grace period"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s drain: %(message)s")
    address, node_ip = gcs_address(os.environ), os.environ.get("MY_POD_IP")
    if address is None or node_ip is None:
        log.warning("RAY_ADDRESS/FQ_RAY_IP or MY_POD_IP not set: not a KubeRay worker pod, nothing to drain")
        return 0
    # An unreachable GCS makes the client retry for longer than any grace period: bound the
    # whole hook by the deadline, so a failed drain never holds up the pod's termination.
    worker = threading.Thread(
        target=_drain_and_log, args=(address, node_ip, args.deadline_seconds), daemon=True
    )
    worker.start()
    worker.join(timeout=args.deadline_seconds)
    if worker.is_alive():
        log.warning(
            "no answer from the GCS at %s within %s s; the pod stops without a drain",
            address,
            args.deadline_seconds,
        )
    return 0


def _drain_and_log(address: str, node_ip: str, deadline_seconds: int) -> None:
    try:
        log.info(drain(address, node_ip, deadline_seconds))
    except Exception as exc:  # a failed drain must never block the pod's termination
        log.warning("drain failed (%s); the pod stops without it", exc)


if __name__ == "__main__":
    sys.exit(main())
