"""Canary rollouts over real HTTP: traffic share, sticky keys, rollback, promotion, runtime changes."""

from __future__ import annotations

import threading
from collections import Counter

import httpx

from tests.serve.conftest import sample_rows, wait_for
from mlray.serve.api.client import answered, post_concurrently

REQUESTS = 2000


def replica_sees(client: httpx.Client, canary: str | None, weight: float) -> None:
    """Wait until the answering replica routes with this canary and weight."""

    def synced() -> bool:
        models = client.get("/v1/models").json()
        return models["canary"] == canary and models["canary_weight"] == weight

    wait_for(synced, 30, f"replica to route {weight} to {canary}")


def versions_with_traffic(state: dict) -> set[str]:
    """The versions a rollout state sends a positive share of requests to."""
    weight = state["canary_weight"] if state["canary"] else 0.0
    return {v for v, share in ((state["stable"], 1 - weight), (state["canary"], weight)) if v and share > 0}


def rollout(client: httpx.Client) -> dict:
    return client.get("/v1/rollout").json()


def test_canary_gets_its_share_and_sticky_keys_stay_on_one_version(deploy, serve_url):
    client = deploy(rollout={"canary": "v2", "canary_weight": 0.2, "promote_after_windows": None})
    replica_sees(client, "v2", 0.2)
    rows = sample_rows(REQUESTS, seed=4)
    responses = post_concurrently(serve_url, [{"instances": [row]} for row in rows], concurrency=16)
    versions = Counter(r.json()["model_version"] for r in responses)
    assert sum(versions.values()) == REQUESTS
    assert abs(versions["v2"] / REQUESTS - 0.2) <= 0.03, versions

    keys = [f"rider-{i}" for i in range(40)]
    first = post_concurrently(serve_url, [{"instances": [rows[0]]}] * 40, 8, [{"x-request-key": k} for k in keys])
    again = post_concurrently(serve_url, [{"instances": [rows[1]]}] * 40, 8, [{"x-request-key": k} for k in keys])
    assert [r.json()["model_version"] for r in first] == [r.json()["model_version"] for r in again]
    assert {r.json()["model_version"] for r in first} == {"v1", "v2"}


def test_a_failing_canary_is_rolled_back_and_stable_takes_all_traffic(deploy, serve_url):
    client = deploy(rollout={"canary": "broken", "canary_weight": 0.3, "max_error_rate": 0.05})
    replica_sees(client, "broken", 0.3)
    row = sample_rows(1)[0]

    def rolled_back() -> bool:
        post_concurrently(serve_url, [{"instances": [row]}] * 40, concurrency=8)
        return rollout(client)["status"] == "rolled_back"

    wait_for(rolled_back, 60, "automatic rollback", interval_s=0.0)
    state = rollout(client)
    assert state["stable"] == "v1" and state["canary"] is None and "error rate" in state["reason"]
    assert state["figures"]["broken"]["total"]["errors"] > 0
    replica_sees(client, None, 0.0)
    after = post_concurrently(serve_url, [{"instances": [row]}] * 200, concurrency=16)
    assert all(r.status_code == 200 and r.json()["model_version"] == "v1" for r in after)


def test_a_healthy_canary_is_promoted(deploy, serve_url):
    client = deploy(rollout={"canary": "v2", "canary_weight": 0.5, "promote_after_windows": 2, "max_p99_ms": 5000})
    replica_sees(client, "v2", 0.5)
    row = sample_rows(1)[0]

    def promoted() -> bool:
        post_concurrently(serve_url, [{"instances": [row]}] * 40, concurrency=8)
        return rollout(client)["status"] == "promoted"

    wait_for(promoted, 60, "promotion", interval_s=0.0)
    assert rollout(client)["stable"] == "v2"
    replica_sees(client, None, 0.0)
    after = post_concurrently(serve_url, [{"instances": [row]}] * 100, concurrency=16)
    assert {r.json()["model_version"] for r in after} == {"v2"}


def test_weights_and_versions_change_at_runtime_without_dropping_requests(deploy, serve_url, bundles):
    client = deploy(rollout={"promote_after_windows": None})
    row = sample_rows(1)[0]
    failures: list[object] = []
    seen: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                responses = post_concurrently(serve_url, [{"instances": [row]}] * 20, concurrency=8)
            except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
                failures.append(exc)
                return
            for response in responses:
                if answered(response):
                    seen[response.json()["model_version"]] += 1
                else:
                    failures.append(response)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        changes = [
            {"versions": {"v3": str(bundles.uri("v2"))}, "canary": "v3", "canary_weight": 0.5},
            {"canary_weight": 1.0},
            {"clear_canary": True, "stable": "v2"},
        ]
        for change in changes:
            response = client.put("/v1/rollout", json=change)
            assert response.status_code == 200, response.text
            state = response.json()
            expected = versions_with_traffic(state)
            replica_sees(client, state["canary"], state["canary_weight"])
            before = dict(seen)
            wait_for(lambda: failures or all(seen[v] > before.get(v, 0) for v in expected), 60, f"traffic to {expected}")
            assert failures == [], failures[:3]
            fresh = post_concurrently(serve_url, [{"instances": [row]}] * 40, concurrency=8)
            assert {r.json()["model_version"] for r in fresh} <= expected
        bad = client.put("/v1/rollout", json={"canary": "v9"})
        assert bad.status_code == 422 and "v9" in bad.json()["detail"]
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert seen["v3"] > 0 and seen["v2"] > 0
