from __future__ import annotations

import pytest

from mlray.stop import MaxRuntime, StoppingCriterion


def test_fires_once_the_seconds_have_passed(clock):
    limit = MaxRuntime(10, clock=clock)
    assert isinstance(limit, StoppingCriterion)
    clock.now = 9.5
    assert not limit(None)
    clock.now = 10.0
    assert limit(None) and limit(123.0)


def test_counts_from_a_given_start_and_again_after_restart(clock):
    limit = MaxRuntime(10, started=-5.0, clock=clock, name="total")
    assert limit.name == "total" and limit.elapsed() == 5.0
    clock.now = 5.0
    assert limit()
    limit.restart()
    assert not limit() and limit.started == 5.0


def test_zero_fires_at_once_and_negative_is_refused(clock):
    assert MaxRuntime(0, clock=clock)()
    with pytest.raises(ValueError):
        MaxRuntime(-1, clock=clock)
