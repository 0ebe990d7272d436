"""The preStop drain hook's pure parts (the GCS calls need a Ray cluster on Kubernetes)."""

from __future__ import annotations

from mlray.kuberay import drain
from mlray.ray_private import NodeRecord


def test_node_is_found_by_pod_ip_among_alive_nodes():
    nodes = [
        NodeRecord("aa", "10.0.0.5", alive=False),  # an earlier incarnation of the same pod IP
        NodeRecord("bb", "10.0.0.6", alive=True),
        NodeRecord("cc", "10.0.0.5", alive=True),
    ]
    assert drain.node_id_for_ip(nodes, "10.0.0.5") == "cc"
    assert drain.node_id_for_ip(nodes, "10.0.0.9") is None


def test_gcs_address_prefers_ray_address_then_kuberay_head_service():
    assert drain.gcs_address({"RAY_ADDRESS": "h:1", "FQ_RAY_IP": "svc"}) == "h:1"
    assert drain.gcs_address({"FQ_RAY_IP": "mlray-head-svc.mlray.svc.cluster.local"}) == (
        "mlray-head-svc.mlray.svc.cluster.local:6379"
    )
    assert drain.gcs_address({}) is None


def test_outside_a_ray_pod_the_hook_exits_cleanly(monkeypatch):
    for name in ("RAY_ADDRESS", "FQ_RAY_IP", "MY_POD_IP"):
        monkeypatch.delenv(name, raising=False)
    assert drain.main(["--deadline-seconds", "5"]) == 0


def test_unreachable_gcs_never_blocks_pod_termination(monkeypatch, caplog):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("MY_POD_IP", "127.0.0.1")
    assert (
        drain.main(["--deadline-seconds", "1"]) == 0
    )  # returns at the deadline, not after the client's retries
    assert any("stops without" in record.getMessage() for record in caplog.records)
