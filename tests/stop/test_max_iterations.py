from __future__ import annotations

import pytest

from mlray.stop import MaxIterations


def test_fires_on_the_nth_call():
    limit = MaxIterations(3)
    assert [limit(None), limit(1.0), limit(0.5), limit(0.5)] == [False, False, True, True]
    assert limit.count == 4


def test_at_least_one_iteration():
    with pytest.raises(ValueError):
        MaxIterations(0)
