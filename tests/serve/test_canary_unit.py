"""The rollout state machine and version choice, without Ray (a fake clock drives the windows)."""

from __future__ import annotations

import random

import pytest

from mlray.config.inference import ModelsSection, RolloutSection
from mlray.serve.canary import Rollout, RolloutUpdate, VersionFigures, choose_version, key_fraction

MODELS = ModelsSection(versions={"v1": "a", "v2": "b"}, stable="v1")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def figures(requests: int, errors: int = 0, latency_ms: float = 5.0) -> VersionFigures:
    result = VersionFigures()
    for i in range(requests):
        result.record(i >= errors, latency_ms)
    return result


def rollout(**policy) -> tuple[Rollout, Clock]:
    clock = Clock()
    settings = {"canary": "v2", "canary_weight": 0.2, "window_s": 10, "min_requests": 20, **policy}
    return Rollout(MODELS, RolloutSection(**settings), clock=clock), clock


def window(r: Rollout, clock: Clock, canary: VersionFigures) -> None:
    r.record({"v2": canary, "v1": figures(50)})
    clock.now += 10
    r.record({})


def test_error_rate_over_the_slo_rolls_back_at_the_end_of_the_window():
    r, clock = rollout(max_error_rate=0.05)
    r.record({"v2": figures(30, errors=6)})
    assert r.state.status == "canary"
    clock.now += 10
    r.record({})
    assert (r.state.status, r.state.stable, r.state.canary, r.state.canary_weight) == ("rolled_back", "v1", None, 0.0)
    assert "error rate 0.200" in r.state.reason


def test_p99_over_the_slo_rolls_back():
    r, clock = rollout(max_p99_ms=100)
    window(r, clock, figures(30, latency_ms=250))
    assert r.state.status == "rolled_back" and "p99" in r.state.reason


def test_healthy_windows_in_a_row_promote_and_thin_windows_do_not_count():
    r, clock = rollout(promote_after_windows=2)
    window(r, clock, figures(30))
    window(r, clock, figures(5, errors=5))  # too few canary requests: neither healthy nor a breach
    assert (r.state.status, r.state.healthy_windows) == ("canary", 1)
    window(r, clock, figures(30))
    assert (r.state.status, r.state.stable, r.state.canary) == ("promoted", "v2", None)


def test_no_automatic_promotion_when_disabled():
    r, clock = rollout(promote_after_windows=None)
    for _ in range(5):
        window(r, clock, figures(30))
    assert r.state.status == "canary" and r.state.healthy_windows == 5


def test_updates_are_validated_and_a_new_canary_starts_a_fresh_streak():
    r, clock = rollout(promote_after_windows=3)
    window(r, clock, figures(30))
    with pytest.raises(ValueError, match="canary: unknown version 'v9'"):
        r.update(RolloutUpdate(canary="v9"))
    with pytest.raises(ValueError, match="is the stable version"):
        r.update(RolloutUpdate(canary="v1"))
    state = r.update(RolloutUpdate(versions={"v3": "c"}, canary="v3", canary_weight=0.5))
    assert (state.canary, state.canary_weight, state.healthy_windows, state.status) == ("v3", 0.5, 0, "canary")
    assert r.update(RolloutUpdate(clear_canary=True)).status == "stable"


def test_choice_follows_the_weight_and_keys_are_sticky():
    r, _ = rollout(canary_weight=0.2)
    rng = random.Random(0)
    share = sum(choose_version(r.state, rng=rng) == "v2" for _ in range(20_000)) / 20_000
    assert share == pytest.approx(0.2, abs=0.01)
    keys = [f"user-{i}" for i in range(200)]
    assert [choose_version(r.state, k) for k in keys] == [choose_version(r.state, k) for k in keys]
    assert {choose_version(r.state, k) == "v2" for k in keys} == {True, False}
    assert 0.0 <= key_fraction("x") < 1.0


def test_view_reports_per_version_figures():
    r, clock = rollout()
    window(r, clock, figures(30, errors=3, latency_ms=7.0))
    view = r.view()
    assert view["figures"]["v2"]["last_window"]["requests"] == 30
    assert view["figures"]["v2"]["total"]["error_rate"] == pytest.approx(0.1)
    assert view["figures"]["v1"]["total"]["p99_ms"] == 5.0
