"""Each job builds its stopping rules from its own config section, each key with one meaning."""

from __future__ import annotations

import pytest

from mlray.config.loader import ConfigError, validate_data
from mlray.config.optimize import OptimizeJobConfig
from mlray.config.train import TrainJobConfig
from mlray.optimize.stopping import SearchStopping
from mlray.stop import MaxRuntime, NoImprovement
from mlray.train.stopping import StopReason, TrainingStops


def test_training_builds_its_limits_named_for_their_stop_reason(clock):
    config = TrainJobConfig.model_validate({
        "training": {"monitor": {"metric": "val_accuracy", "mode": "max"}, "metrics": ["accuracy"]},
        "timeouts": {"total_runtime": 100, "iteration": 10, "no_improvement": 30,
                     "improvement": {"threshold": 0.01}},
    })
    stops = TrainingStops.from_config(config.timeouts, config.training.monitor.mode, run_started=-5.0,
                                      clock=clock)
    assert isinstance(stops.total_runtime, MaxRuntime) and isinstance(stops.iteration, MaxRuntime)
    assert (stops.total_runtime.seconds, stops.total_runtime.started) == (100, -5.0)
    assert stops.total_runtime.name == StopReason.TOTAL_RUNTIME.value
    assert (stops.iteration.seconds, stops.iteration.name) == (10, StopReason.ITERATION.value)
    rule = stops.no_improvement
    assert isinstance(rule, NoImprovement)
    assert (rule.seconds, rule.threshold, rule.mode, rule.direction) == (30, 0.01, "absolute", "max")
    assert rule.name == StopReason.NO_IMPROVEMENT.value


def test_training_defaults_and_disabled_limits(clock):
    defaults = TrainJobConfig().timeouts
    assert (defaults.total_runtime, defaults.iteration, defaults.no_improvement) == (3600, 300, None)
    assert (defaults.improvement.threshold, defaults.improvement.relative) == (0.0, False)  # an absolute gain
    off = defaults.model_copy(update={"total_runtime": None, "iteration": None})
    stops = TrainingStops.from_config(off, "min", run_started=0.0, clock=clock)
    assert stops == TrainingStops(None, None, None)
    clock.now = 1e9
    assert stops.during_epoch() is None and stops.after_epoch(1.0, None) is None


def test_optimization_builds_its_limits_from_its_own_section(clock):
    config = OptimizeJobConfig.model_validate({
        "solver": {"time_limit": 60},
        "timeouts": {"total_runtime": 40, "round": 5, "no_improvement": 2,
                     "improvement": {"threshold": 0.01}},
    })
    stopping = SearchStopping.from_config(config, started=100.0)
    assert stopping.total_deadline == 100 + 40 - 4  # less a margin of min(5 s, 10 %)
    assert (stopping.round_limit, stopping.no_improvement) == (5, 2)
    assert stopping.search_seconds(110.0) == (26.0, "total_runtime")
    assert stopping.search_seconds(200.0) == (0.0, "total_runtime")
    rules = stopping.criteria(110.0, clock=clock)
    deadline, stall = rules.criteria
    assert isinstance(deadline, MaxRuntime) and (deadline.seconds, deadline.name) == (26.0, "total_runtime")
    assert isinstance(stall, NoImprovement)
    assert (stall.seconds, stall.threshold, stall.mode, stall.direction) == (2, 0.01, "relative", "min")
    clock.now = 111.0
    assert rules.reason(None) is None and rules.reason(1000) is None  # no incumbent: never stalled
    clock.now = 112.5
    assert rules.reason(995) is None  # 0.5 %: below the threshold, no progress, but 1.5 s only
    clock.now = 113.0
    assert rules.reason(995) == "no_improvement"


def test_optimization_defaults_time_limit_and_no_stall_rule(clock):
    config = OptimizeJobConfig.model_validate({"solver": {"time_limit": 60}})
    timeouts = config.timeouts
    assert (timeouts.total_runtime, timeouts.round, timeouts.no_improvement) == (3600, 300, None)
    assert (timeouts.improvement.threshold, timeouts.improvement.relative) == (0.0, True)  # a fraction
    stopping = SearchStopping.from_config(config, started=0.0)
    assert stopping.search_seconds(10.0) == (60, "time_limit")
    rules = stopping.criteria(10.0, clock=clock)
    assert [rule.name for rule in rules.criteria] == ["time_limit"]
    clock.now = 70.0
    assert rules.reason(None) == "time_limit"


@pytest.mark.parametrize(
    ("model", "timeouts", "expected"),
    [
        (TrainJobConfig, {"improvement_threshold": 0.1}, "'improvement_threshold' is no longer a key: use "
         "improvement: {threshold: <value>} (an absolute gain"),
        (OptimizeJobConfig, {"improvement_threshold": 0.1}, "'improvement_threshold' is no longer a key: use "
         "improvement: {threshold: <value>} (a fraction of the incumbent"),
        (OptimizeJobConfig, {"iteration": 10}, "'iteration' is no longer a key: use round"),
    ],
)
def test_old_keys_fail_naming_what_to_use_instead(model, timeouts, expected):
    with pytest.raises(ConfigError) as info:
        validate_data(model, {"timeouts": timeouts}, "job.yaml")
    assert "timeouts: " in str(info.value) and expected in str(info.value)
