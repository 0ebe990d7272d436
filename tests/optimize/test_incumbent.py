"""The incumbent store: strict improvement, bounds ending the solve, throttled atomic checkpoints on GCS."""

from __future__ import annotations

import json

import ray

from mlray.optimize.incumbent import CheckpointTarget, IncumbentStore, load_checkpoint
from mlray.storage import Storage
from tests.waiting import wait_for


def test_store_keeps_strict_improvements_and_declares_optimal_when_the_bound_meets_them(ray_cluster):
    store = IncumbentStore.remote()
    assert ray.get(store.offer.remote(10, {"routes": [[1]]}, "a"))
    assert not ray.get(store.offer.remote(10, {"routes": [[2]]}, "b"))  # ties do not replace
    assert ray.get(store.offer.remote(9, {"routes": [[3]]}, "b"))
    assert ray.get(store.snapshot.remote(2)).incumbent is None  # the caller already has version 2
    ray.get(store.offer_bound.remote(8, "c"))
    assert ray.get(store.snapshot.remote()).stop_reason is None
    ray.get(store.offer_bound.remote(9, "c"))
    report = ray.get(store.report.remote())
    assert report.stop_reason == "optimal"
    assert [(h["objective"], h["arm"]) for h in report.history] == [(10, "a"), (9, "b")]
    ray.kill(store)


def test_checkpoints_on_gcs_are_throttled_flushed_and_read_back(ray_cluster, gcs_uri):
    storage = Storage(gcs_uri)
    store = IncumbentStore.remote(
        CheckpointTarget(storage, "fp-1", interval=3600, write_timeout=10, retry_interval=1)
    )
    ray.get(store.offer.remote(20, {"starts": [[0]]}, "a"))  # first improvement: written at once
    # ... by the store's writer thread: the offer does not wait for storage.
    wait_for(lambda: ray.get(store.report.remote()).checkpoint_writes == 1, 10, "the first write")
    assert json.loads(storage.read_text("incumbent.json"))["objective"] == 20
    ray.get(store.offer.remote(15, {"starts": [[1]]}, "a"))  # within the interval: held back
    assert json.loads(storage.read_text("incumbent.json"))["objective"] == 20
    assert ray.get(store.flush.remote()) == 2
    incumbent, bound = load_checkpoint(storage, "fp-1")
    assert (incumbent.objective, incumbent.payload, incumbent.arm, bound) == (
        15,
        {"starts": [[1]]},
        "checkpoint",
        None,
    )
    assert load_checkpoint(storage, "another-problem") is None
    ray.kill(store)
