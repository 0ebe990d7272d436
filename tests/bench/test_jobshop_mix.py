"""bench/jobshop_mix.py compares mixes at equal CPUs: no contender may use more solver threads than given."""

from __future__ import annotations

import pytest

from bench.jobshop_mix import BASELINE, INSTANCES, contenders
from bench.optimize import instance_sets
from mlray.optimize.arms.base import ArmSpec, arm_class_of


@pytest.mark.parametrize("cpus", [2, 4])
def test_every_contender_gets_the_same_cpus(cpus):
    for name, solver in contenders(cpus).items():
        arms = [ArmSpec(f"a{i}", arm["kind"], options=arm.get("options", {}))
                for i, arm in enumerate(solver["arms"])]
        assert solver["cpus_per_actor"] * len(arms) == cpus, name  # what Ray reserves for the contender
        caps = [arm_class_of(spec).thread_cap(spec) for spec in arms]
        share = solver["cpus_per_actor"]
        # An uncapped arm runs its race share, then at most what the capped arms leave of the total.
        assert len(arms) * share == cpus or all(c is not None for c in caps), name
        if all(c is not None for c in caps):
            assert sum(caps) == cpus, (name, caps)
    assert BASELINE in contenders(cpus)


def test_its_instances_are_not_in_the_default_benchmark_set():
    default = {name for names in instance_sets()["default"].values() for name in names}
    assert not default & set(INSTANCES)
