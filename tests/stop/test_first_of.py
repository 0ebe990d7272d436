from __future__ import annotations

from mlray.stop import FirstOf, MaxIterations, MaxRuntime, NoImprovement


def test_names_the_first_rule_that_fired(clock):
    stall = NoImprovement(5, clock=clock)
    rules = FirstOf(MaxRuntime(10, name="deadline", clock=clock), stall)
    assert rules.reason(3.0) is None and rules.fired is None
    clock.now = 6
    assert rules.reason(3.0) == "no_improvement"
    clock.now = 10
    assert rules(3.0) and rules.fired is rules.criteria[0]


def test_asks_every_rule_on_every_call(clock):
    count = MaxIterations(5)
    stall = NoImprovement(5, clock=clock)
    rules = FirstOf(MaxRuntime(0, clock=clock), stall, count)
    clock.now = 1
    assert rules.reason(7.0) == "max_runtime"
    assert count.count == 1 and (stall.reference, stall.last_improvement) == (7.0, 1)


def test_nothing_to_ask_never_stops():
    assert not FirstOf()(1.0)
