"""VRPLIB ``.vrp`` files of ``TYPE : CVRP`` or ``TYPE : VRPTW``, read strictly (see ``readers.py``).

CVRP ``EUC_2D`` rounds distances to the nearest integer; VRPTW uses DIMACS (tenths, truncated), as
PyVRP's benchmarks do. The best-known value comes from a ``.sol`` beside the file (its ``Cost`` line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from mlray.optimize.problems import ProblemError, RoutingProblem

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
