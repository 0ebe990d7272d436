"""The benchmark instances shipped in the package: named, found, readable, with their best-known values."""

from __future__ import annotations

import pytest

from mlray.optimize import instances, read_problem
from mlray.optimize.instances import INSTANCES_ROOT


def test_every_shipped_problem_file_is_available_by_name_and_by_path():
    names = instances.available()
    assert {name.split("/")[0] for name in names} == {"jsp", "cvrp", "vrptw"}
    assert {"jsp/ft06", "jsp/ta30", "cvrp/E-n13-k4.vrp", "cvrp/X-n1001-k43.vrp", "vrptw/C101.txt",
            "vrptw/C1_10_2.vrp"} <= set(names)  # fmt: skip
    for name in names:
        assert instances.path(name) == INSTANCES_ROOT / name
        bare = name.split("/")[1].rsplit(".", 1)[0]
        assert instances.path(bare) == INSTANCES_ROOT / name
    assert not [name for name in names if name.endswith((".sol", ".json", ".md"))]


@pytest.mark.parametrize(
    ("name", "best_known"), [("ft06", 55), ("E-n13-k4", 247), ("X-n1001-k43", 72355), ("C101", 827.3)]
)
def test_shipped_instances_carry_their_best_known_values(name, best_known):
    assert read_problem(instances.path(name)).best_known == pytest.approx(best_known)


def test_unknown_instance_names_the_name_and_how_to_list_the_shipped_ones(tmp_path):
    with pytest.raises(ValueError, match=r"no shipped instance named 'ft6'.*available\(\)"):
        instances.path("ft6")
    own = tmp_path / "mine.vrp"
    own.write_text("x")
    assert instances.resolve(own) == own  # an existing file wins over the catalogue
    assert instances.resolve("jsp/ft06") == INSTANCES_ROOT / "jsp" / "ft06"
    with pytest.raises(ValueError, match=r"not a file, and no shipped instance named 'jsp/ft6'"):
        instances.resolve("jsp/ft6")


def test_sources_name_the_origin_of_every_shipped_folder():
    sources = (INSTANCES_ROOT / "SOURCES.md").read_text()
    for marker in ("JSPLIB", "PyVRP/VRPLIB", "PyVRP/Instances", "X-n1001-k43", "C1_10_2", "MIT", "CC BY-SA 4.0"):
        assert marker in sources
