"""The default CPU split policy (mlray/optimize/cpu_split.py) on its own: race, then focus on the leader."""

from __future__ import annotations

from mlray.optimize.cpu_split import RaceThenFocus


def policy(race_fraction: float = 0.5) -> RaceThenFocus:
    split = RaceThenFocus(["a", "b"], {"a": None, "b": 1}, total=2, race_fraction=race_fraction)
    split.begin(searching_since=100.0, search_seconds=10.0)  # the race ends at 105
    return split


def test_the_race_holds_until_its_end_and_a_leader():
    split = policy()
    assert split.decide([{"arm": "b", "objective": 5}], {"a", "b"}, now=104.9) is None
    assert split.decide([], {"a", "b"}, now=106.0) is None and not split.focused  # nobody leads yet


def test_the_leader_takes_what_it_can_use_then_a_lost_arm_resplits():
    split = policy()
    history = [{"arm": "a", "objective": 9}, {"arm": "b", "objective": 7}]
    assert split.decide(history, {"a", "b"}, now=105.0) == {"b": 1, "a": 1} and split.focused
    assert split.decide(history, {"a", "b"}, now=106.0) is None  # same arms: no new split
    assert split.decide(history, {"a"}, now=107.0) == {"a": 2}


def test_race_fraction_one_keeps_the_equal_split():
    assert policy(race_fraction=1.0).decide([{"arm": "a", "objective": 1}], {"a", "b"}, now=1e9) is None
