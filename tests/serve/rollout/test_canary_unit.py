"""The rollout state machine and version choice, without Ray (a fake clock drives the windows).

Windows are fed per-version figures: absolute limits, rules relative to stable in the same window,
promotion in steps, and a controller restarted on the same storage carrying on at its step.
"""

from __future__ import annotations

import random

import pytest

from mlray.config.inference import ModelsSection, RolloutSection
from mlray.serve.rollout.canary import Rollout, RolloutUpdate, choose_version, key_fraction
from mlray.serve.rollout.figures import VersionFigures

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


def window(r: Rollout, clock: Clock, canary: VersionFigures, stable: VersionFigures | None = None) -> None:
    r.record({"v2": canary, "v1": stable or figures(50)})
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
    r, clock = rollout(promote_after_windows=2, promotion_steps=[1.0])
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


def test_an_error_rate_over_stables_by_more_than_the_margin_rolls_back_below_the_absolute_limit():
    r, clock = rollout(max_error_rate=0.10, max_error_rate_margin=0.02)
    window(r, clock, figures(40, errors=2), stable=figures(100, errors=0))  # 5 % vs 0 %
    assert r.state.status == "rolled_back"
    assert "error rate 0.050 > stable's 0.000 + 0.02" in r.state.reason


def test_errors_both_versions_share_do_not_trip_the_relative_rule():
    r, clock = rollout(max_error_rate=0.10, max_error_rate_margin=0.02)
    window(r, clock, figures(40, errors=2), stable=figures(100, errors=4))  # 5 % vs 4 %
    assert (r.state.status, r.state.healthy_windows) == ("canary", 1)


def test_a_p99_over_stables_times_the_factor_rolls_back_once_the_gap_is_past_the_jitter_floor():
    r, clock = rollout(max_p99_ratio=2.0, min_p99_excess_ms=20)
    window(r, clock, figures(30, latency_ms=15.0), stable=figures(50, latency_ms=5.0))  # x3 but only 10 ms
    assert r.state.status == "canary"
    window(r, clock, figures(30, latency_ms=90.0), stable=figures(50, latency_ms=30.0))  # x3, 60 ms
    assert r.state.status == "rolled_back"
    assert "p99 90.0 ms > stable's 30.0 ms x 2.0" in r.state.reason


def test_load_that_slows_both_versions_alike_is_no_breach_without_an_absolute_limit():
    r, clock = rollout(promote_after_windows=3)
    assert r.policy.max_p99_ms is None  # the default: latency is judged against stable
    for _ in range(2):
        window(r, clock, figures(30, latency_ms=4000.0), stable=figures(120, latency_ms=3500.0))
    assert (r.state.status, r.state.healthy_windows) == ("canary", 2)


def test_a_thin_stable_window_leaves_only_the_absolute_rules():
    r, clock = rollout(max_error_rate=0.10, min_requests=20)
    window(r, clock, figures(40, errors=2), stable=figures(10))  # 5 % vs a stable too thin to compare
    assert (r.state.status, r.state.healthy_windows) == ("canary", 1)


def test_healthy_windows_step_the_canary_through_the_shares_and_the_last_step_promotes():
    r, clock = rollout(canary_weight=0.05, promotion_steps=[0.25, 0.5, 1.0], promote_after_windows=2)
    shares = []
    for _ in range(6):
        window(r, clock, figures(30))
        shares.append(r.state.canary_weight)
    assert shares == [0.05, 0.25, 0.25, 0.5, 0.5, 0.0]
    assert (r.state.status, r.state.stable, r.state.steps_taken, r.state.windows_judged) == ("promoted", "v2", 2, 6)
    assert "stepped from 0.05 to 0.25" in r.events[0]["reason"]


def test_a_breach_after_some_steps_rolls_back_from_the_step_reached():
    r, clock = rollout(canary_weight=0.05, promote_after_windows=1)
    window(r, clock, figures(30))
    assert r.state.canary_weight == 0.25
    window(r, clock, figures(30, errors=10))
    assert (r.state.status, r.state.canary_weight, r.state.steps_taken) == ("rolled_back", 0.0, 1)


@pytest.mark.parametrize("steps", [[0.25, 0.5], [0.5, 0.25, 1.0], [0.0, 1.0], []])
def test_promotion_steps_must_increase_to_one(steps):
    with pytest.raises(ValueError, match="promotion_steps"):
        RolloutSection(promotion_steps=steps)


def test_a_restarted_controller_carries_on_at_its_step_with_its_healthy_windows(tmp_path):
    from mlray.serve.rollout.controller import RolloutController

    rollout_config = {"canary": "v2", "canary_weight": 0.05, "window_s": 10, "min_requests": 20,
                      "promotion_steps": [0.25, 0.5, 1.0], "promote_after_windows": 2}
    config = {"models": MODELS.model_dump(), "rollout": rollout_config, "storage": {"uri": str(tmp_path)},
              "monitoring": {"enable_metrics": False}}

    def start() -> tuple[RolloutController, Clock]:
        controller, clock = RolloutController(config), Clock()
        controller.reconfigure({"models": config["models"], "rollout": config["rollout"]})
        controller.rollout.clock = clock
        controller.rollout.window_started = clock()
        return controller, clock

    def healthy_window(controller: RolloutController, clock: Clock) -> dict:
        controller.report({"v2": figures(30).to_wire(), "v1": figures(60).to_wire()})
        clock.now += 10
        return controller.report({})

    first, clock = start()
    for _ in range(3):
        state = healthy_window(first, clock)
    assert (state["canary_weight"], state["steps_taken"], state["healthy_windows"]) == (0.25, 1, 1)

    restarted, clock = start()
    resumed = restarted.rollout.state
    assert (resumed.canary_weight, resumed.steps_taken, resumed.healthy_windows, resumed.windows_judged) == (
        0.25, 1, 1, 3)
    assert resumed.epoch > state["epoch"]
    state = healthy_window(restarted, clock)  # the second healthy window at 0.25, counting the one before
    assert (state["canary_weight"], state["steps_taken"], state["healthy_windows"]) == (0.5, 2, 0)


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
