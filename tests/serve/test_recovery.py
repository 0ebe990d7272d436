"""Killing the replica process under load: Serve replaces it and the service answers again."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.serve.conftest import APP_NAME, sample_rows, wait_for
from mlray.serve.api.client import answered, post_concurrently


def replica_pids(gcs_address: str) -> set[int]:
    from ray.util.state import list_actors

    actors = list_actors(address=gcs_address, filters=[("state", "=", "ALIVE")], limit=1000)
    return {a.pid for a in actors if a.class_name == f"ServeReplica:{APP_NAME}:PredictionService"}


@pytest.mark.slow
def test_a_killed_replica_is_replaced_and_requests_succeed_after_recovery(deploy, serve_url, ray_cluster):
    client = deploy()
    row = sample_rows(1)[0]
    (victim,) = replica_pids(ray_cluster.gcs_address)
    outcomes: list[tuple[float, bool]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for response in post_concurrently(serve_url, [{"instances": [row]}] * 8, concurrency=8):
                ok = answered(response)
                outcomes.append((time.monotonic(), ok))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_for(lambda: len(outcomes) >= 40, 60, "load before the kill")
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: replica_pids(ray_cluster.gcs_address) - {victim}, 120, "a new replica", interval_s=0.5)
        wait_for(lambda: any(ok for t, ok in outcomes if t > killed_at + 1) and client.get("/readyz").status_code == 200,
                 120, "requests to succeed again", interval_s=0.5)
    finally:
        stop.set()
        worker.join()
    failed = sum(1 for t, ok in outcomes if t >= killed_at and not ok)
    since_kill = [t for t, ok in outcomes if t >= killed_at]
    recovered_after = min(t for t, ok in outcomes if t > killed_at + 1 and ok) - killed_at
    print(f"\nreplica kill: {failed} of {len(since_kill)} requests failed; first success {recovered_after:.1f} s after")
    after = post_concurrently(serve_url, [{"instances": [row]}] * 50, concurrency=8)
    assert all(answered(r) for r in after)
