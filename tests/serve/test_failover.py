"""Zero failed requests through failures: two replicas on two nodes under steady load, then a replica SIGKILLed or
its node drained, through the shipped HAProxy setup and through Serve's Python proxy.

Each case starts its own two-node cluster (``bench.support.serving_cluster``: ``ray start`` subprocesses, one
raylet per loopback address), because Serve's proxy mode is cluster-wide and read when Ray starts. Load is
``SteadyLoad``: no client-side retry, so the count is what the server side achieved. Every request after the
fault's onset must be answered 200.
"""

from __future__ import annotations

import pytest

from bench.support.serving_cluster import fault_under_load, two_node_app
from mlray.serve.cluster_env import haproxy_binary

BODY = {"instances": [[0.5, 0.5, 10.0, 5.0]]}


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["kill", "drain"])
@pytest.mark.parametrize("mode", ["haproxy", "python proxy"])
def test_every_request_succeeds_through_a_replica_kill_or_a_node_drain(mode, fault):
    if mode == "haproxy" and haproxy_binary() is None:
        pytest.skip("no HAProxy binary for Ray's HAProxy mode")
    cluster = two_node_app(haproxy=mode == "haproxy")
    try:
        result = fault_under_load(cluster, fault, node="n2", body=BODY)
    finally:
        left = cluster.stop()
    print(f"\n{result}")
    assert not left, f"processes of the test's cluster still running: {left}"
    assert result.requests > 100, result
    assert result.failed == 0, result
    assert sum(result.replicas_after.values()) == 2 if fault == "kill" else result.replicas_after["head"] >= 1
