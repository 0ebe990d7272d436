"""Dynamic batching under concurrency, read back from the Prometheus metric; runtime retuning."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.conftest import assert_same_predictions, expected, sample_rows, wait_for
from mlray.serve.api.client import answered, post_concurrently

CONCURRENCY = 200


def metrics_url() -> str:
    import ray

    node = ray._private.worker._global_node
    return f"http://{node.node_ip_address}:{node.metrics_export_port}/metrics"


def batch_size_histogram(version: str) -> dict[str, float]:
    """Bucket upper bound -> cumulative count of ``mlray_serve_batch_size`` for one version."""
    buckets: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(metrics_url(), timeout=10).text):
        if family.name != "ray_mlray_serve_batch_size":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("version") == version:
                buckets[sample.labels["le"]] = buckets.get(sample.labels["le"], 0.0) + sample.value
    return buckets


def test_200_concurrent_requests_are_batched_and_all_correct(deploy, bundles, serve_url):
    client = deploy(service={"batch_size": 64, "batch_wait_timeout_s": 0.01, "max_ongoing_requests": 256})
    rows = sample_rows(CONCURRENCY, seed=3)
    responses = post_concurrently(serve_url, [{"instances": [row]} for row in rows], CONCURRENCY)
    assert all(answered(r) for r in responses), responses[:3]
    got = [r.json()["predictions"][0] for r in responses]
    assert_same_predictions(got, expected(bundles, "v1", rows))

    def multi_request_batches() -> float:
        buckets = batch_size_histogram("v1")
        return buckets.get("+Inf", 0.0) > 0 and buckets["+Inf"] - buckets.get("1.0", 0.0)

    batches_over_one = wait_for(multi_request_batches, 60, "the batch size metric", interval_s=1.0)
    assert batches_over_one > 0
    assert client.get("/readyz").status_code == 200

