from __future__ import annotations

import math

import pytest

from mlray.stop import NoImprovement


def test_never_fires_without_a_value(clock):
    rule = NoImprovement(5, clock=clock)
    clock.now = 100
    assert not rule(None)


def test_the_first_value_counts_and_restarts_the_clock(clock):
    rule = NoImprovement(5, clock=clock)
    clock.now = 10
    assert not rule(50.0)
    assert (rule.reference, rule.last_improvement) == (50.0, 10)
    clock.now = 14.9
    assert not rule(50.0)
    clock.now = 15
    assert rule(50.0)


def test_absolute_threshold_minimising(clock):
    rule = NoImprovement(5, 0.5, clock=clock)
    rule(10.0)
    clock.now = 3
    rule(9.6)  # a gain of 0.4: not enough
    assert (rule.reference, rule.last_improvement) == (10.0, 0)
    clock.now = 4
    rule(9.4)  # 0.6 over the last counted value (gains add up until one counts)
    assert (rule.reference, rule.last_improvement) == (9.4, 4)
    clock.now = 9
    assert rule(9.0)


def test_absolute_threshold_maximising(clock):
    rule = NoImprovement(5, 0.5, direction="max", clock=clock)
    rule(1.0)
    clock.now = 2
    rule(1.4)
    assert rule.last_improvement == 0
    rule(1.6)
    assert (rule.reference, rule.last_improvement) == (1.6, 2)


def test_relative_threshold_is_a_fraction_of_the_reference(clock):
    rule = NoImprovement(1, 0.1, mode="relative", clock=clock)
    rule(1000.0)
    clock.now = 0.5
    rule(901.0)  # 9.9 %
    assert rule.reference == 1000.0
    rule(899.0)  # 10.1 %
    assert (rule.reference, rule.last_improvement) == (899.0, 0.5)
    clock.now = 1.5
    assert rule(899.0)


def test_rebase_measures_from_outside_and_nan_never_counts(clock):
    rule = NoImprovement(5, 0.5, direction="max", clock=clock)
    rule.rebase(1.0)
    clock.now = 1
    rule(1.4)
    assert rule.last_improvement == 0
    rule(math.nan)
    assert rule.last_improvement == 0
    rule.rebase(None)
    rule(math.nan)  # nothing to measure from: counts, as the first value does
    assert rule.last_improvement == 1


def test_bad_arguments_are_refused(clock):
    with pytest.raises(ValueError):
        NoImprovement(-1, clock=clock)
    with pytest.raises(ValueError):
        NoImprovement(1, mode="percent", clock=clock)  # type: ignore[arg-type]
