"""bench/optimize.py's instance sets and summaries (no Ray: the solves themselves are the benchmark's)."""

from __future__ import annotations

import math

import pytest

from bench.optimize import Run, instance_paths, instance_sets, set_rows
from mlray.optimize import read_problem


def test_the_named_sets_hold_the_broader_benchmark_with_best_known_values():
    sets = instance_sets()
    assert len(sets["jobshop"]["jsp"]) == 70
    assert {"la01", "la40", "ta01", "ta30"} <= set(sets["jobshop"]["jsp"])
    x = sets["x"]["cvrp"]
    assert len(x) >= 15 and "X-n1001-k43" not in x
    assert all(read_problem(path).num_nodes - 1 <= 300 for _, _, path in instance_paths(["x"]))
    scale = {name for group in sets["scale"].values() for name in group}
    assert scale == {"X-n1001-k43", "C1_10_2", "R1_10_2"}
    for _, group, path in instance_paths(["jobshop", "x", "scale"]):
        problem = read_problem(path)
        assert problem.best_known, path
        assert problem.kind == {"jsp": "jobshop", "cvrp": "cvrp", "vrptw": "vrptw"}[group]


def test_an_unknown_set_is_refused_naming_the_known_ones():
    with pytest.raises(SystemExit, match=r"--set: expected names from \[.*'jobshop'.*\], got \['ta'\]"):
        instance_paths(["ta"])


def test_set_summary_counts_pairs_worse_by_more_than_half_a_point_and_infeasible_ones():
    def run(instance, contender, seed, gap):
        return Run("jobshop", "jsp", instance, contender, seed, gap, 2**20 * (seed + 1))

    runs = [
        run("la01", "sharing", 0, 1.0), run("la01", "single CP-SAT", 0, 0.6),  # worse by 0.4: not counted
        run("la01", "sharing", 1, 1.2), run("la01", "single CP-SAT", 1, 0.6),  # worse by 0.6: counted
        run("ta01", "sharing", 0, math.nan), run("ta01", "single CP-SAT", 0, 2.0),  # infeasible: counted
    ]  # fmt: skip
    [row] = set_rows(runs)
    assert row[:3] == ["jobshop", "single CP-SAT", 3]
    assert row[6] == "2 (67 %)" and row[7] == "2"
