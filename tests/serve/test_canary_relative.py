"""Canary rules relative to stable, on a real Serve app under real load.

Both versions are ``faulty_mlp`` bundles (mlray.serve.faults): the same network with an injected delay per call and
an injected error rate, so a canary can be a true regression of stable. The sync deployment runs one model call
per request, so each version's latency is its own. Absolute limits are left where they cannot trip (no absolute
p99; a 20 % error limit), so what rolls back is the rule relative to stable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mlray.serve.faults import FACTORY, faulty_mlp
from mlray.serve.load import SteadyLoad
from mlray.models import ModelSpec, save_bundle
from mlray.storage import Storage
from mlray.usecases.driver_trips import FEATURE_COLUMNS
from tests.serve.conftest import HIDDEN, Bundles, sample_rows, wait_for

STABLE_DELAY_MS = 200.0
FAULTY = {  # name: (delay_ms, error_rate)
    "steady": (STABLE_DELAY_MS, 0.0),
    "steady-twin": (STABLE_DELAY_MS, 0.0),
    "slower-x3": (3 * STABLE_DELAY_MS, 0.0),
    "errors-5pc": (STABLE_DELAY_MS, 0.05),
}
CONCURRENCY = 16


@pytest.fixture(scope="module")
def faulty_bundles(bundles: Bundles) -> Bundles:
    storage = Storage(str(bundles.root))
    for name, (delay_ms, error_rate) in FAULTY.items():
        kwargs = {"delay_ms": delay_ms, "error_rate": error_rate, "input_dim": len(FEATURE_COLUMNS),
                  "output_dim": 2, "hidden": HIDDEN}
        save_bundle(faulty_mlp(**kwargs), ModelSpec(FACTORY, kwargs, list(FEATURE_COLUMNS)), storage, name)
    return bundles


def deploy_canary(deploy: Callable[..., httpx.Client], canary: str, weight: float, **rollout: Any) -> httpx.Client:
    return deploy(
        service={"mode": "sync"},
        models={"versions": {name: name for name in FAULTY}, "stable": "steady",
                "trust": {"allowed_factories": ["mlray.models.*", FACTORY]}},
        rollout={"canary": canary, "canary_weight": weight, "window_s": 2.0, "min_requests": 8,
                 "max_error_rate": 0.2, **rollout},
    )


def rollout(client: httpx.Client) -> dict[str, Any]:
    return client.get("/v1/rollout").json()


def run_until(client: httpx.Client, serve_url: str, status: str, timeout_s: float) -> tuple[dict, SteadyLoad, float]:
    """Steady load until the rollout reaches ``status``; the final state, the load and the seconds it took."""
    with SteadyLoad(serve_url, {"instances": [sample_rows(1)[0]]}, CONCURRENCY) as load:
        onset = time.monotonic()
        wait_for(lambda: rollout(client)["status"] == status, timeout_s, f"rollout {status}", interval_s=0.5)
        took = time.monotonic() - onset
    return rollout(client), load, took


@pytest.mark.slow
def test_a_canary_three_times_slower_than_stable_is_rolled_back(deploy, serve_url, faulty_bundles):
    client = deploy_canary(deploy, "slower-x3", 0.3, promote_after_windows=None)
    state, load, took = run_until(client, serve_url, "rolled_back", 90)
    print(f"\nlatency x3: rolled back {took:.1f} s after the load started: {state['reason']}; {load.summary()}")
    assert state["stable"] == "steady" and state["canary"] is None
    assert "stable's" in state["reason"] and "p99" in state["reason"]
    assert load.failed() == []


@pytest.mark.slow
def test_a_canary_failing_5_percent_of_requests_is_rolled_back(deploy, serve_url, faulty_bundles):
    client = deploy_canary(deploy, "errors-5pc", 0.3, promote_after_windows=None)
    state, load, took = run_until(client, serve_url, "rolled_back", 90)
    print(f"\nerrors 5 %: rolled back {took:.1f} s after the load started: {state['reason']}; {load.summary()}")
    assert state["stable"] == "steady" and state["canary"] is None
    assert "error rate" in state["reason"] and "stable's" in state["reason"]
    assert state["figures"]["errors-5pc"]["total"]["errors"] > 0


@pytest.mark.slow
def test_a_canary_as_fast_as_stable_steps_up_under_load_and_is_promoted(deploy, serve_url, faulty_bundles):
    client = deploy_canary(deploy, "steady-twin", 0.1, promotion_steps=[0.25, 0.5, 1.0], promote_after_windows=2)
    state, load, took = run_until(client, serve_url, "promoted", 120)
    steps = [e["reason"] for e in state["events"] if "stepped" in e["reason"] or "promoted" in e["reason"]]
    print(f"\nequal versions: promoted after {took:.1f} s: {steps}; {load.summary()}")
    assert state["stable"] == "steady-twin" and state["steps_taken"] == 2
    assert [s.split(" after ")[0] for s in steps] == [
        "steady-twin stepped from 0.1 to 0.25", "steady-twin stepped from 0.25 to 0.5", "steady-twin promoted"]
    assert not any("rolled back" in e["reason"] for e in state["events"])
    served = {o.version for o in load.outcomes if o.ok}
    assert served == {"steady", "steady-twin"} and load.failed() == []
