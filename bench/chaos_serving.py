"""Serving rows of ``python -m bench.chaos``: failed requests through a replica SIGKILL and a node drain, per proxy.

Each case runs on its own two-node cluster (``mlray.serve.local_cluster.two_node_app``), not the shared one: the
proxy mode is cluster-wide and read when Ray starts.
"""

from __future__ import annotations

from typing import Any

from mlray.serve.local_cluster import fault_under_load, two_node_app

BODY = {"instances": [[0.5, 0.5, 10.0, 5.0]]}


def failed_requests(ctx: Any) -> list[Any]:
    from bench.chaos import Row

    rows = []
    for mode in ("haproxy", "python proxy"):
        for fault in ("kill", "drain"):
            cluster = two_node_app(haproxy=mode == "haproxy")
            try:
                result = fault_under_load(cluster, fault, node="n2", body=BODY,
                                          observe_s=20.0 if ctx.quick else 40.0)
            finally:
                cluster.stop()
            detail = f"; {result.failures[0]}" if result.failures else ""
            rows.append(Row(f"{result.fault} under load ({mode})", "failed requests",
                            f"{result.failed} of {result.requests}{detail}", "0"))
    return rows
