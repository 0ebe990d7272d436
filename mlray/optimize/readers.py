"""Problem files: VRPLIB ``.vrp`` (CVRP and VRPTW), Solomon ``.txt`` (VRPTW), JSPLIB / Taillard job shop.

Every format is read strictly: a specification, section, heading or line the
reader does not understand is a ``ProblemError`` naming it, never dropped (a
dropped ``TIME_WINDOW_SECTION`` once turned a VRPTW into a CVRP without a word).

Rounding follows the benchmarks' own conventions, as PyVRP's benchmarks do
(pyvrp.org/dev/benchmarking.html): CVRP ``EUC_2D`` (the X set) rounds distances to
the nearest integer; VRPTW (Solomon, Gehring-Homberger in VRPLIB format) uses
DIMACS: distances, travel times, time windows and service times are scaled by 10
and truncated (PyVRP's ``round_func="dimacs"``), so objectives are in tenths.

Best-known values come from beside the file when present: a VRPLIB ``.sol``
(its ``Cost`` line), or ``scheduleopt_bks.json`` / ``instances.json`` in the
job-shop folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from mlray.optimize.problems import JobShopProblem, ProblemError, RoutingProblem

FileFormat = Literal["vrplib", "solomon", "jobshop"]

# What the VRPLIB reader understands; anything else in a file is refused by name.
VRPLIB_SPECIFICATIONS = frozenset(
    {
        "NAME",
        "COMMENT",
        "TYPE",
        "DIMENSION",
        "CAPACITY",
        "VEHICLES",
        "SERVICE_TIME",
        "EDGE_WEIGHT_TYPE",
        "EDGE_WEIGHT_FORMAT",
        "DISPLAY_DATA_TYPE",
    }
)
VRPLIB_SECTIONS = frozenset(
    {
        "NODE_COORD_SECTION",
        "DEMAND_SECTION",
        "DEPOT_SECTION",
        "EDGE_WEIGHT_SECTION",
        "DISPLAY_DATA_SECTION",
        "TIME_WINDOW_SECTION",
        "SERVICE_TIME_SECTION",
    }
)
VRPLIB_TYPES = {"CVRP": "cvrp", "VRPTW": "vrptw"}
SOLOMON_HEADINGS = ("VEHICLE", "NUMBER CAPACITY", "CUSTOMER")
SOLOMON_COLUMNS = "CUST NO. XCOORD. YCOORD. DEMAND READY TIME DUE DATE SERVICE TIME"
_VRPLIB_KEYWORD = re.compile(r"^\s*[A-Z][A-Z0-9_]*\s*:", re.MULTILINE)


def detect_format(path: Path) -> FileFormat:
    """VRPLIB (``KEY : value`` lines, ``*_SECTION`` blocks), Solomon (VEHICLE / CUSTOMER tables),
    else job shop."""
    text = path.read_text(errors="replace")
    if path.suffix == ".vrp" or _VRPLIB_KEYWORD.search(text[:4000]) or "_SECTION" in text[:4000]:
        return "vrplib"
    head = text[:2000].upper()
    if "CUSTOMER" in head and "VEHICLE" in head:
        return "solomon"
    return "jobshop"


def detect_kind(path: Path) -> Literal["cvrp", "vrptw", "jobshop"]:
    """The problem a file holds: a VRPLIB file says so in its ``TYPE``; Solomon files are VRPTW."""
    found = detect_format(path)
    if found == "vrplib":
        return vrplib_type(path, vrplib_keywords(path.read_text(errors="replace"))[0])
    return "vrptw" if found == "solomon" else "jobshop"


def read_routing(path: Path, kind: str = "auto") -> RoutingProblem:
    """A VRPLIB or Solomon file; ``kind`` (cvrp, vrptw, or auto) is checked against the file's type."""
    found = detect_format(path)
    if found == "solomon":
        problem = read_solomon(path)
    elif found == "vrplib":
        problem = read_vrplib(path)
    else:
        raise ProblemError(f"problem.kind: {kind} expected a VRPLIB or Solomon file, {path} is neither")
    if kind != "auto" and problem.kind != kind:
        raise ProblemError(
            f"problem.kind: expected {kind} as configured, but {path} holds a {problem.kind} problem "
            "(set problem.kind to auto or to the file's type)"
        )
    return problem


def holds_routing(path: Path) -> bool:
    return detect_format(path) != "jobshop"


def holds_jobshop(path: Path) -> bool:
    return detect_format(path) == "jobshop"


def read_jobshop(path: str | Path, best_known: float | None = None) -> JobShopProblem:
    """JSPLIB (``n m`` then one line of ``machine duration`` pairs per job, machines from 0)
    or Taillard (``n m``, n lines of durations, n lines of machines numbered from 1)."""
    path = Path(path)
    numbers: list[list[int]] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            numbers.append([int(v) for v in text.split()])
        except ValueError:
            raise ProblemError(
                f"{path}: not a job-shop file: line {number} {text[:60]!r} is not understood "
                "(expected integers only; comments start with '#')"
            ) from None
    if not numbers or len(numbers[0]) != 2:
        got = numbers[0] if numbers else "nothing"
        raise ProblemError(f"{path}: not a job-shop file: expected a first line 'jobs machines', got {got}")
    num_jobs, num_machines = numbers[0]
    body = numbers[1:]
    if len(body) == num_jobs and all(len(r) == 2 * num_machines for r in body):
        jobs = [list(zip(r[0::2], r[1::2], strict=True)) for r in body]
    elif len(body) == 2 * num_jobs and all(len(r) == num_machines for r in body):
        durations, machines = body[:num_jobs], body[num_jobs:]
        jobs = [
            [(m - 1, d) for m, d in zip(ms, ds, strict=True)]
            for ms, ds in zip(machines, durations, strict=True)
        ]
    else:
        raise ProblemError(
            f"{path}: not a job-shop file: expected {num_jobs} lines of {2 * num_machines} numbers "
            f"(JSPLIB) or {2 * num_jobs} lines of {num_machines} (Taillard) after 'jobs machines', "
            f"got {len(body)} lines of {sorted({len(r) for r in body})} numbers"
        )
    name = path.stem
    return JobShopProblem(
        name=name, jobs=tuple(tuple(j) for j in jobs), best_known=best_known or jobshop_best_known(path)
    )


def jobshop_best_known(path: Path) -> float | None:
    """Upper bound from ScheduleOpt's ``bks.json`` or JSPLIB's ``instances.json`` beside the file."""
    name = path.stem
    bks = path.parent / "scheduleopt_bks.json"
    if bks.is_file():
        for entry in json.loads(bks.read_text()):
            if entry.get("instance") in (name, f"{name}js") and entry.get("upper_bound") is not None:
                return float(entry["upper_bound"])
    catalogue = path.parent / "instances.json"
    if catalogue.is_file():
        for entry in json.loads(catalogue.read_text()):
            if entry.get("name") == name:
                value = entry.get("optimum") or (entry.get("bounds") or {}).get("upper")
                return float(value) if value is not None else None
    return None


def vrplib_keywords(text: str) -> tuple[dict[str, str], list[str]]:
    """Specifications (keyword -> value) and section names of a VRPLIB text, in the file's spelling."""
    specifications: dict[str, str] = {}
    sections: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("EOF"):
            break
        if "_SECTION" in stripped:
            sections.append(stripped.strip(" :").upper())
        elif ":" in stripped:
            keyword, value = stripped.split(":", 1)
            specifications[keyword.strip().upper()] = value.strip()
    return specifications, sections


def vrplib_type(path: Path, specifications: dict[str, str]) -> Literal["cvrp", "vrptw"]:
    declared = specifications.get("TYPE", "").upper()
    if declared not in VRPLIB_TYPES:
        raise ProblemError(
            f"{path}: TYPE: expected one of {sorted(VRPLIB_TYPES)}, got {declared or 'none'!r}"
        )
    return VRPLIB_TYPES[declared]  # type: ignore[return-value]


def read_vrplib(path: str | Path, *, best_known: float | None = None) -> RoutingProblem:
    """A VRPLIB file of ``TYPE : CVRP`` or ``TYPE : VRPTW`` (``TIME_WINDOW_SECTION``, ``SERVICE_TIME``
    or ``SERVICE_TIME_SECTION``, ``VEHICLES``). CVRP ``EUC_2D`` distances are rounded to integers;
    VRPTW uses the DIMACS convention (tenths, truncated), as PyVRP does for Gehring-Homberger."""
    import numpy as np
    import vrplib

    path = Path(path)
    specifications, sections = vrplib_keywords(path.read_text(errors="replace"))
    for keyword in specifications:
        if keyword not in VRPLIB_SPECIFICATIONS:
            raise ProblemError(
                f"{path}: specification {keyword} is not understood (expected one of "
                f"{', '.join(sorted(VRPLIB_SPECIFICATIONS))}); refusing rather than ignoring it"
            )
    for section in sections:
        if section not in VRPLIB_SECTIONS:
            raise ProblemError(
                f"{path}: section {section} is not understood (expected one of "
                f"{', '.join(sorted(VRPLIB_SECTIONS))}); refusing rather than ignoring it"
            )
    kind = vrplib_type(path, specifications)
    for keyword in ("DIMENSION", "CAPACITY", "VEHICLES", "SERVICE_TIME"):
        value = specifications.get(keyword)
        if value is not None and not re.fullmatch(r"[0-9]+(\.[0-9]*)?", value):
            raise ProblemError(
                f"{path}: not a valid VRPLIB file: {keyword}: expected a number, got {value!r}"
            )
    try:
        instance = vrplib.read_instance(str(path), compute_edge_weights=False)
    except Exception as exc:  # noqa: BLE001 - vrplib raises assorted errors on malformed text
        raise ProblemError(f"{path}: not a valid VRPLIB file: {exc}") from None
    for key in ("demand", "capacity", "dimension"):
        if key not in instance:
            raise ProblemError(f"{path}: missing {key.upper()}{'_SECTION' if key == 'demand' else ''}")
    size = int(instance["dimension"])

    def node_array(key: str, columns: int) -> Any:
        values = np.asarray(instance[key], dtype=float)
        shape = (size,) if columns == 1 else (size, columns)
        if values.shape != shape:
            raise ProblemError(
                f"{path}: {key.upper()}_SECTION: expected {size} rows (DIMENSION) of {columns} value(s) "
                f"after the node number, got shape {values.shape}"
            )
        return values

    depot = instance.get("depot", np.array([0]))
    if len(depot) != 1 or int(depot[0]) != 0:
        raise ProblemError(
            f"{path}: DEPOT_SECTION: expected one depot, the first node, got {[d + 1 for d in depot]}"
        )
    demands = node_array("demand", 1).astype(int).tolist()
    common: dict[str, Any] = {
        "name": str(instance.get("name", path.stem)),
        "demands": demands,
        "capacity": int(instance["capacity"]),
        "num_vehicles": int(instance.get("vehicles", size - 1)),
        "best_known": best_known or routing_best_known(path),
    }
    weight_type = str(instance.get("edge_weight_type", "EUC_2D")).upper()
    has_coordinates = "node_coord" in instance
    if kind == "vrptw":
        if "time_window" not in instance:
            raise ProblemError(f"{path}: TYPE : VRPTW: expected a TIME_WINDOW_SECTION, the file has none")
        if weight_type != "EUC_2D" or not has_coordinates:
            raise ProblemError(
                f"{path}: EDGE_WEIGHT_TYPE: expected EUC_2D with a NODE_COORD_SECTION for a VRPTW "
                f"(DIMACS distances), got {weight_type}"
            )
        service = instance.get("service_time", 0.0)
        if np.ndim(service) == 0:  # one SERVICE_TIME for every customer; the depot has none
            services = [0.0] + [float(service)] * (size - 1)
        else:
            services = node_array("service_time", 1).tolist()
        return RoutingProblem.from_coordinates(
            coordinates=node_array("node_coord", 2).tolist(),
            rounding="dimacs",
            time_windows=node_array("time_window", 2).tolist(),
            service_times=services,
            **common,
        )
    for key in ("time_window", "service_time"):
        if key in instance:
            raise ProblemError(
                f"{path}: {key.upper()}: time windows and service times need TYPE : VRPTW, the file says CVRP"
            )
    if weight_type == "EUC_2D" and has_coordinates:
        return RoutingProblem.from_coordinates(
            coordinates=node_array("node_coord", 2).tolist(), rounding="round", **common
        )
    if weight_type == "EXPLICIT" and "edge_weight" in instance:
        matrix = instance["edge_weight"]
        drawn = "node_coord" if has_coordinates else "display_data" if "display_data" in instance else None
        coordinates = node_array(drawn, 2).tolist() if drawn else layout_from_distances(matrix)
        return RoutingProblem(
            coordinates=tuple(map(tuple, coordinates)),
            distances=tuple(tuple(round(v) for v in row) for row in matrix.tolist()),
            **common,
        )
    raise ProblemError(
        f"{path}: EDGE_WEIGHT_TYPE: expected EUC_2D with a NODE_COORD_SECTION or EXPLICIT with an "
        f"EDGE_WEIGHT_SECTION, got {weight_type}"
    )


def read_solomon(path: str | Path, *, best_known: float | None = None) -> RoutingProblem:
    """Solomon's VRPTW text: a name, ``VEHICLE`` / ``NUMBER CAPACITY`` / the two numbers, ``CUSTOMER``,
    the column headings, then one row of 7 numbers per node (the depot first). DIMACS rounding."""
    path = Path(path)
    lines = [(n, line.strip()) for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)]
    lines = [(n, text) for n, text in lines if text]
    expected = [("VEHICLE", 1), ("NUMBER CAPACITY", 2), ("CUSTOMER", 4), (SOLOMON_COLUMNS, 5)]
    for heading, index in expected:
        if len(lines) <= index or " ".join(lines[index][1].upper().split()) != heading:
            got = lines[index] if len(lines) > index else (None, "the end of the file")
            raise ProblemError(
                f"{path}: Solomon heading {heading!r} expected at line {got[0]}, got {got[1]!r}"
            )
    try:
        vehicles, capacity = (int(v) for v in lines[3][1].split())
    except ValueError:
        raise ProblemError(
            f"{path}: line {lines[3][0]}: expected the vehicle number and capacity, got {lines[3][1]!r}"
        ) from None
    rows = []
    for number, text in lines[6:]:
        values = text.split()
        try:
            row = [float(v) for v in values]
        except ValueError:
            row = []
        if len(row) != 7 or row[0] != len(rows):
            raise ProblemError(
                f"{path}: line {number} {text[:60]!r} is not understood: expected customer row {len(rows)} "
                f"of 7 numbers ({SOLOMON_COLUMNS})"
            )
        rows.append(row)
    return RoutingProblem.from_coordinates(
        name=lines[0][1],
        coordinates=[r[1:3] for r in rows],
        demands=[int(r[3]) for r in rows],
        capacity=capacity,
        num_vehicles=vehicles,
        rounding="dimacs",
        time_windows=[r[4:6] for r in rows],
        service_times=[r[6] for r in rows],
        best_known=best_known or routing_best_known(path),
    )


def layout_from_distances(matrix: Any) -> list[list[float]]:
    """Plane coordinates that roughly keep the given distances (classical MDS), for drawing only."""
    import numpy as np

    squared = np.asarray(matrix, dtype=float) ** 2
    n = len(squared)
    centering = np.eye(n) - np.ones((n, n)) / n
    gram = -0.5 * centering @ squared @ centering
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:2]
    return (vectors[:, top] * np.sqrt(np.maximum(values[top], 0))).tolist()


def routing_best_known(path: Path) -> float | None:
    solution = path.with_suffix(".sol")
    if not solution.is_file():
        return None
    match = re.search(r"^Cost\s+([0-9.]+)", solution.read_text(), flags=re.MULTILINE)
    return float(match.group(1)) if match else None
