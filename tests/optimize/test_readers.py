"""Readers (mlray/optimize/readers.py): every shipped format reads right, anything not understood is refused.

Only the last test starts Ray (a real solve of a VRPLIB VRPTW file); the others read files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import vrplib

from mlray.optimize import (
    ProblemError,
    RoutePlan,
    RoutingOptimizer,
    check_solution,
    instances,
    read_problem,
)
from mlray.optimize.checkers import routing_cost

FOLDER_KINDS = {"jsp": "jobshop", "cvrp": "cvrp", "vrptw": "vrptw"}


def best_known_plan(path: Path) -> RoutePlan:
    solution = vrplib.read_solution(str(path.with_suffix(".sol")))
    return RoutePlan(tuple(tuple(r) for r in solution["routes"]))


@pytest.mark.parametrize("name", instances.available())
def test_every_shipped_instance_reads_as_its_kind_with_a_best_known_value(name):
    problem = read_problem(instances.path(name))
    assert problem.kind == FOLDER_KINDS[name.split("/")[0]]
    assert problem.best_known is not None and problem.best_known > 0


@pytest.mark.parametrize(
    ("name", "best_known", "service"), [("C1_10_2", 41337.8, 90), ("R1_10_2", 48261.6, 10)]
)
def test_gehring_homberger_vrplib_files_are_vrptw_with_windows_service_and_fleet(name, best_known, service):
    path = instances.path(name)
    problem = read_problem(path)
    assert problem.kind == "vrptw" and problem.num_nodes == 1001
    assert problem.num_vehicles == 250 and problem.capacity == 200
    assert problem.scale == 10  # DIMACS: tenths, truncated
    assert problem.service_times[0] == 0 and set(problem.service_times[1:]) == {service * 10}
    assert len(problem.time_windows) == 1001
    # The published best solution is feasible under these windows at exactly its published cost: the
    # rounding convention is the one its value was computed with.
    plan = best_known_plan(path)
    assert check_solution(problem, plan) == []
    assert routing_cost(problem, plan) / problem.scale == pytest.approx(best_known)
    assert problem.best_known == pytest.approx(best_known)
    # The checker checks the windows: the same routes driven backwards arrive late.
    backwards = RoutePlan(tuple(route[::-1] for route in plan.routes))
    assert any("after its due time" in v for v in check_solution(problem, backwards))


def write_vrptw(folder: Path, *, service: str = "SERVICE_TIME : 10", extra: str = "") -> Path:
    """Five customers on a line east of the depot; windows that force the order 3, 1, 2 on one vehicle."""
    path = folder / "line.vrp"
    path.write_text(
        "NAME : line\nTYPE : VRPTW\nDIMENSION : 4\nVEHICLES : 2\nCAPACITY : 10\n"
        f"{service}\nEDGE_WEIGHT_TYPE : EUC_2D\n{extra}"
        "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 1\n4 0.5 0.5\n"
        "DEMAND_SECTION\n1 0\n2 3\n3 3\n4 3\n"
        "TIME_WINDOW_SECTION\n1 0 100\n2 10.55 20\n3 0 40\n4 0 5\n"
        "DEPOT_SECTION\n1\n-1\nEOF\n"
    )
    return path


def test_vrplib_vrptw_uses_dimacs_tenths_for_distances_windows_and_service(tmp_path):
    problem = read_problem(write_vrptw(tmp_path))
    assert problem.kind == "vrptw" and problem.num_vehicles == 2 and problem.scale == 10
    assert problem.distances[0][1] == 14  # sqrt(2) = 1.414... -> 14 tenths, truncated (not rounded)
    assert problem.distances[0][3] == 7  # sqrt(0.5) = 0.707... -> 7
    assert problem.time_windows[1] == (105, 200)  # 10.55 -> 105
    assert problem.service_times == (0, 100, 100, 100)  # SERVICE_TIME is the customers'; the depot has none
    assert check_solution(problem, RoutePlan(((3, 1, 2),))) == []
    assert any("reaches customer 3" in v for v in check_solution(problem, RoutePlan(((1, 2, 3),))))


def test_a_vrplib_file_is_known_by_its_keywords_whatever_its_suffix(tmp_path):
    path = write_vrptw(tmp_path)
    text = "COMMENT : first line\n" + path.read_text()
    path.unlink()
    renamed = tmp_path / "line.txt"
    renamed.write_text(text)
    assert read_problem(renamed).kind == "vrptw"


def test_service_time_section_gives_one_service_time_per_node(tmp_path):
    section = "SERVICE_TIME_SECTION\n1 0\n2 1\n3 2\n4 0.5\n"
    problem = read_problem(write_vrptw(tmp_path, service="", extra=section))
    assert problem.service_times == (0, 10, 20, 5)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("DISTANCE : 50\n", r"specification DISTANCE is not understood"),
        ("RELEASE_TIME_SECTION\n1 0\n2 0\n3 0\n4 0\n", r"section RELEASE_TIME_SECTION is not understood"),
    ],
)
def test_vrplib_keywords_the_reader_does_not_know_are_refused_by_name(tmp_path, extra, expected):
    with pytest.raises(ProblemError, match=expected):
        read_problem(write_vrptw(tmp_path, extra=extra))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("TYPE : VRPTW", "TYPE : CVRP"), r"TIME_WINDOW: time windows and service times need TYPE : VRPTW"),
        (("TYPE : VRPTW", "TYPE : PDPTW"), r"TYPE: expected one of \['CVRP', 'VRPTW'\], got 'PDPTW'"),
        (("TIME_WINDOW_SECTION\n1 0 100\n2 10.55 20\n3 0 40\n4 0 5\n", ""), "expected a TIME_WINDOW"),
        (("4 0 5\n", ""), r"TIME_WINDOW_SECTION: expected 4 rows \(DIMENSION\)"),
        (("EUC_2D", "MAN_2D"), r"EDGE_WEIGHT_TYPE: expected EUC_2D .* got MAN_2D"),
    ],
)
def test_vrplib_files_that_would_lose_their_windows_or_rows_are_refused(tmp_path, edit, expected):
    path = write_vrptw(tmp_path)
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises(ProblemError, match=expected):
        read_problem(path)


def test_a_cvrp_file_with_an_unknown_section_is_refused_naming_it(tmp_path):
    original = instances.path("E-n13-k4").read_text()
    path = tmp_path / "E-n13-k4.vrp"
    path.write_text(original.replace("DEPOT_SECTION", "PICKUP_SECTION\n1 0\nDEPOT_SECTION"))
    with pytest.raises(ProblemError, match=r"section PICKUP_SECTION is not understood"):
        read_problem(path)


def test_configured_kind_that_contradicts_the_file_is_refused(tmp_path):
    with pytest.raises(ProblemError, match=r"problem.kind: expected cvrp as configured.* holds a vrptw"):
        read_problem(write_vrptw(tmp_path), kind="cvrp")
    assert read_problem(write_vrptw(tmp_path), kind="vrptw").kind == "vrptw"


def test_solomon_text_with_an_unknown_line_is_refused_naming_it(tmp_path):
    original = instances.path("C101").read_text()
    assert read_problem(instances.path("C101")).num_vehicles == 25
    path = tmp_path / "C101.txt"
    path.write_text(original.replace("CUSTOMER", "DEPOT HOURS\n  8 17\n\nCUSTOMER"))
    with pytest.raises(ProblemError, match=r"heading 'CUSTOMER' expected at line \d+, got 'DEPOT HOURS'"):
        read_problem(path)
    path.write_text(original + "\nPRIORITY 1 2 3\n")
    with pytest.raises(ProblemError, match=r"'PRIORITY 1 2 3' is not understood: expected customer row 101"):
        read_problem(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 2\n0 3 1 2\n1 4 0 1\n9 9 9 9\n", r"expected 2 lines of 4 numbers \(JSPLIB\).* got 3 lines"),
        ("2 2\n0 3 1 2\nDUE 10 20\n", r"line 3 'DUE 10 20' is not understood"),
        ("2 2 7\n0 3 1 2\n1 4 0 1\n", r"expected a first line 'jobs machines', got \[2, 2, 7\]"),
    ],
)
def test_job_shop_lines_the_reader_does_not_understand_are_refused(tmp_path, text, expected):
    path = tmp_path / "tiny_jsp"
    path.write_text(text)
    with pytest.raises(ProblemError, match=expected):
        read_problem(path)


def cut_down(source: Path, folder: Path, customers: int) -> Path:
    """The depot and the first ``customers`` customers of a Gehring-Homberger VRPLIB file, same format."""
    instance = vrplib.read_instance(str(source), compute_edge_weights=False)
    nodes = range(customers + 1)
    rows = {
        "NODE_COORD_SECTION": [f"{i + 1} {x} {y}" for i, (x, y) in zip(nodes, instance["node_coord"])],
        "DEMAND_SECTION": [f"{i + 1} {d}" for i, d in zip(nodes, instance["demand"])],
        "TIME_WINDOW_SECTION": [f"{i + 1} {a} {b}" for i, (a, b) in zip(nodes, instance["time_window"])],
    }
    path = folder / f"{source.stem}-{customers}.vrp"
    path.write_text(
        f"NAME : {path.stem}\nTYPE : VRPTW\nDIMENSION : {customers + 1}\nVEHICLES : {customers}\n"
        f"CAPACITY : {instance['capacity']}\nSERVICE_TIME : {instance['service_time']}\n"
        "EDGE_WEIGHT_TYPE : EUC_2D\n"
        + "".join(f"{name}\n" + "\n".join(lines) + "\n" for name, lines in rows.items())
        + "DEPOT_SECTION\n1\n-1\nEOF\n"
    )
    return path


def test_a_vrplib_vrptw_file_is_solved_with_its_windows_honoured(ray_cluster, tmp_path, make_config):
    path = cut_down(instances.path("R1_10_2"), tmp_path, 60)
    problem = read_problem(path)
    assert problem.kind == "vrptw" and problem.num_nodes == 61
    config = make_config(**{"solver.time_limit": 3, "solver.num_actors": 2, "output.plots": False})
    result = RoutingOptimizer(config).parallel_solve(path)  # read from the file, as a job does
    assert result.kind == "vrptw"
    assert result.feasible, result.violations
    assert check_solution(problem, result.solution, round(result.objective * problem.scale)) == []
    # The windows bind: the same customers visited in number order on the routes' vehicles arrive late.
    in_order = RoutePlan(tuple(tuple(sorted(route)) for route in result.solution.routes))
    assert any("after its due time" in v for v in check_solution(problem, in_order))
