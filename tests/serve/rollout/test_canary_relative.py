"""Canary rules relative to stable, on a real Serve app under real load.

Both versions are ``faulty_mlp`` bundles (mlray.serve.faults): the same network with an injected delay per call and
an injected error rate, so a canary can be a true regression of stable. The sync deployment runs one model call
per request, so each version's latency is its own. Absolute limits are left where they cannot trip (no absolute
p99; a 20 % error limit), so what rolls back is the rule relative to stable. Requests the failing canary fails are
answered by stable (``rollout.fallback_to_stable``), so its rollback costs clients (almost) nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bench.support.load import SteadyLoad, load_until_rollout
from mlray.serve.faults import regression_sections, save_regressions
from mlray.usecases.driver_trips import FEATURE_COLUMNS
from tests.serve.conftest import HIDDEN, Bundles, sample_rows, wait_for

STABLE_DELAY_MS = 200.0
CONCURRENCY = 16
ROLLBACK_GOAL_S = 60  # the benchmark goal: seconds from the regression's onset to its rollback
FAILED_GOAL = 0.001  # and the share of all requests that may fail meanwhile
# Short windows; absolute limits where they cannot trip (no absolute p99, 20 % errors): the relative rules judge.
RULES = {"window_s": 2.0, "min_requests": 8, "max_error_rate": 0.2}


@pytest.fixture(scope="module")
def faulty_bundles(bundles: Bundles) -> Bundles:
    save_regressions(bundles.root, STABLE_DELAY_MS, list(FEATURE_COLUMNS), HIDDEN)
    return bundles


def deploy_canary(deploy: Callable[..., httpx.Client], canary: str, weight: float, **rollout: Any) -> httpx.Client:
    return deploy(**regression_sections(canary, weight, **RULES, **rollout))


def canary_errors_reported(serve_url: str) -> int:
    figures = httpx.get(f"{serve_url}/v1/rollout", timeout=10).json()["figures"]
    return figures["errors-5pc"]["total"]["errors"]


def run_until(serve_url: str, status: str, timeout_s: float) -> tuple[dict, SteadyLoad, float]:
    """Steady load until the rollout reaches ``status``; the final state, the load and the seconds it took."""
    return load_until_rollout(serve_url, {"instances": [sample_rows(1)[0]]}, status, timeout_s, CONCURRENCY)


@pytest.mark.slow
def test_a_canary_three_times_slower_than_stable_is_rolled_back(deploy, serve_url, faulty_bundles):
    deploy_canary(deploy, "slower-x3", 0.3, promote_after_windows=None)
    state, load, took = run_until(serve_url, "rolled_back", 90)
    print(f"\nlatency x3: rolled back {took:.1f} s after the load started: {state['reason']}; {load.summary()}")
    assert state["stable"] == "steady" and state["canary"] is None
    assert "stable's" in state["reason"] and "p99" in state["reason"]
    assert took <= ROLLBACK_GOAL_S
    assert load.failed() == []


@pytest.mark.slow
def test_a_canary_failing_5_percent_of_requests_is_rolled_back(deploy, serve_url, faulty_bundles):
    deploy_canary(deploy, "errors-5pc", 0.3, promote_after_windows=None)
    state, load, took = run_until(serve_url, "rolled_back", 90)
    print(f"\nerrors 5 %: rolled back {took:.1f} s after the load started: {state['reason']}; {load.summary()}")
    assert state["stable"] == "steady" and state["canary"] is None
    assert "error rate" in state["reason"] and "stable's" in state["reason"]
    assert took <= ROLLBACK_GOAL_S
    # The canary's failures reached the rules, yet stable answered those requests in its place.
    canary_errors = state["figures"]["errors-5pc"]["total"]["errors"]
    assert canary_errors > 0
    assert len(load.failed()) < FAILED_GOAL * len(load.outcomes), load.summary()
    fallbacks = load.count(lambda o: o.ok and o.fallback_from == "errors-5pc" and o.version == "steady")
    assert fallbacks > 0
    # Every failed canary attempt, and only those, was answered again by stable (figures arrive within a report).
    wait_for(lambda: canary_errors_reported(serve_url) == fallbacks, 10, f"{fallbacks} canary errors reported")


@pytest.mark.slow
def test_a_canary_as_fast_as_stable_steps_up_under_load_and_is_promoted(deploy, serve_url, faulty_bundles):
    deploy_canary(deploy, "steady-twin", 0.1, promotion_steps=[0.25, 0.5, 1.0], promote_after_windows=2)
    state, load, took = run_until(serve_url, "promoted", 120)
    steps = [e["reason"] for e in state["events"] if "stepped" in e["reason"] or "promoted" in e["reason"]]
    print(f"\nequal versions: promoted after {took:.1f} s: {steps}; {load.summary()}")
    assert state["stable"] == "steady-twin" and state["steps_taken"] == 2
    assert [s.split(" after ")[0] for s in steps] == [
        "steady-twin stepped from 0.1 to 0.25", "steady-twin stepped from 0.25 to 0.5", "steady-twin promoted"]
    assert not any("rolled back" in e["reason"] for e in state["events"])
    served = {o.version for o in load.outcomes if o.ok}
    assert served == {"steady", "steady-twin"} and load.failed() == []
