"""CPUs after the race: the split rule, and a real portfolio handing its CPUs to the leading arm."""

from __future__ import annotations

import pytest

from mlray.optimize import RoutingOptimizer, SchedulingOptimizer, read_problem
from mlray.optimize.portfolio import allocate


def found(*entries: tuple[str, int]) -> list[dict]:
    return [{"time": i, "objective": objective, "arm": arm} for i, (arm, objective) in enumerate(entries)]


def test_an_uncapped_leader_takes_every_thread():
    history = found(("a", 1200), ("b", 1100), ("a", 1150))
    assert allocate(history, ["a", "b"], {"a": None, "b": None}, 2) == {"b": 2, "a": 0}


def test_single_threaded_arms_keep_one_thread_each():
    history = found(("a", 900), ("b", 800))
    assert allocate(history, ["a", "b"], {"a": 1, "b": 1}, 2) == {"b": 1, "a": 1}


def test_a_capped_leader_leaves_the_rest_to_the_next_arm():
    history = found(("pyvrp", 800), ("cp", 900))
    caps = {"pyvrp": 1, "cp": None, "idle": None}
    assert allocate(history, ["cp", "idle", "pyvrp"], caps, 3) == {"pyvrp": 1, "cp": 2, "idle": 0}


def test_arms_without_a_solution_rank_last_in_their_order_and_others_are_ignored():
    history = found(("gone", 700), ("b", 900))
    assert allocate(history, ["a", "b", "c"], {"a": None, "b": 1, "c": None}, 4) == {"b": 1, "a": 3, "c": 0}


def test_default_arms_take_their_seeds_from_solver_seed_and_the_first_is_the_anchor(instance, make_config):
    problem = read_problem(instance("cvrp/A-n32-k5.vrp"))
    config = make_config(**{"solver.seed": 7, "solver.num_actors": 3})
    specs = RoutingOptimizer(config).arm_specs(problem)
    assert [s.seed for s in specs] == [7, 8, 9]
    assert [s.receive for s in specs] == [False, True, True]
    jsp = read_problem(instance("jsp/ft06"))
    assert [s.seed for s in SchedulingOptimizer(config).arm_specs(jsp)] == [7, 8, 9]


def test_an_improver_that_receives_nothing_is_refused(instance, make_config):
    arms = [{"kind": "pyvrp"}, {"kind": "pyvrp", "improve_only": True, "receive": False}]
    config = make_config(**{"solver.arms": arms})
    with pytest.raises(ValueError, match="improve_only needs receive: true"):
        RoutingOptimizer(config).arm_specs(read_problem(instance("cvrp/A-n32-k5.vrp")))


def test_after_the_race_the_leading_cp_sat_arm_gets_both_cpus(ray_cluster, instance, make_config):
    """ta01 is not solved in seconds, so the race ends with a leader: it goes on with 2 workers
    from the incumbent, the other arm parks, and the threads in use never exceed the 2 given."""
    problem = read_problem(instance("jsp/ta01"))
    two_cp_sat = [
        {"kind": "cp_sat", "receive": False},
        {"kind": "cp_sat", "options": {"optimize_with_core": True}},
    ]  # two CP-SAT arms: the default job-shop portfolio has a tabu arm, which may lead instead
    config = make_config(
        **{"solver.time_limit": 6, "solver.race_fraction": 0.2, "output.plots": False},
        **{"solver.arms": two_cp_sat},
    )
    result = SchedulingOptimizer(config).parallel_solve(problem)
    assert result.feasible, result.violations
    assert len(result.allocation_history) == 1, result.allocation_history
    split = result.allocation_history[0]
    threads = split["threads"]
    assert sorted(threads.values()) == [0, 2]
    leader = max(threads, key=threads.get)
    assert leader in [h["arm"] for h in result.history if h["time"] <= split["time"]]
    stats = {s.name: s for s in result.arm_stats}
    other = next(name for name in stats if name != leader)
    assert stats[leader].threads == [1, 2] and stats[leader].rounds >= 2, stats
    assert stats[other].threads == [1, 0], stats
