"""Problem files: VRPLIB ``.vrp`` (CVRP), Solomon ``.txt`` (VRPTW), JSPLIB / Taillard job shop.

Best-known values come from beside the file when present: a VRPLIB ``.sol``
(its ``Cost`` line), or ``scheduleopt_bks.json`` / ``instances.json`` in the
job-shop folder. A file that does not parse raises ``ProblemError`` naming it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from mlray.optimize.problems import JobShopProblem, Problem, ProblemError, RoutingProblem

ProblemKind = Literal["auto", "cvrp", "vrptw", "jobshop"]


def detect_kind(path: Path) -> Literal["cvrp", "vrptw", "jobshop"]:
    if path.suffix == ".vrp":
        return "cvrp"
    head = path.read_text(errors="replace")[:2000].upper()
    if "CUSTOMER" in head and "VEHICLE" in head:
        return "vrptw"
    if "NODE_COORD_SECTION" in head or "CAPACITY :" in head.replace("\t", " "):
        return "cvrp"
    return "jobshop"


def read_problem(path: str | Path, kind: ProblemKind = "auto") -> Problem:
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"problem.path: file not found: {path}")
    resolved = detect_kind(path) if kind == "auto" else kind
    if resolved == "jobshop":
        return read_jobshop(path)
    return read_vrplib(path, time_windows=resolved == "vrptw")


def read_jobshop(path: str | Path, best_known: float | None = None) -> JobShopProblem:
    """JSPLIB (``n m`` then one line of ``machine duration`` pairs per job, machines from 0)
    or Taillard (``n m``, n lines of durations, n lines of machines numbered from 1)."""
    path = Path(path)
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            rows.append(text.split())
    try:
        numbers = [[int(v) for v in row] for row in rows]
    except ValueError as exc:
        raise ProblemError(f"{path}: not a job-shop file (expected integers only): {exc}") from None
    if not numbers or len(numbers[0]) < 2:
        raise ProblemError(f"{path}: not a job-shop file: expected a first line 'jobs machines'")
    num_jobs, num_machines = numbers[0][:2]
    body = numbers[1:]
    if len(body) >= num_jobs and all(len(r) == 2 * num_machines for r in body[:num_jobs]):
        jobs = [list(zip(r[0::2], r[1::2], strict=True)) for r in body[:num_jobs]]
    elif len(body) >= 2 * num_jobs and all(len(r) == num_machines for r in body[: 2 * num_jobs]):
        durations, machines = body[:num_jobs], body[num_jobs : 2 * num_jobs]
        jobs = [
            [(m - 1, d) for m, d in zip(ms, ds, strict=True)]
            for ms, ds in zip(machines, durations, strict=True)
        ]
    else:
        raise ProblemError(
            f"{path}: not a job-shop file: expected {num_jobs} lines of {2 * num_machines} numbers "
            f"(JSPLIB) or {2 * num_jobs} lines of {num_machines} (Taillard)"
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


def read_vrplib(path: str | Path, *, time_windows: bool, best_known: float | None = None) -> RoutingProblem:
    import vrplib

    path = Path(path)
    try:
        instance = vrplib.read_instance(str(path), instance_format="solomon" if time_windows else "vrplib")
    except Exception as exc:  # noqa: BLE001 - vrplib raises assorted errors on malformed text
        raise ProblemError(
            f"{path}: not a valid {'Solomon' if time_windows else 'VRPLIB'} file: {exc}"
        ) from None
    for key in ("demand", "capacity"):
        if key not in instance:
            raise ProblemError(f"{path}: missing {key.upper()} section")
    depot = int(instance["depot"][0]) if "depot" in instance else 0
    if depot != 0:
        raise ProblemError(f"{path}: DEPOT_SECTION: expected the first node, got node {depot}")
    demands = instance["demand"].tolist()
    common = {
        "name": str(instance.get("name", path.stem)),
        "demands": demands,
        "capacity": int(instance["capacity"]),
        "num_vehicles": int(instance.get("vehicles", len(demands) - 1)),
        "best_known": best_known or routing_best_known(path),
    }
    weight_type = str(instance.get("edge_weight_type", "EUC_2D"))
    if time_windows:
        return RoutingProblem.from_coordinates(
            coordinates=instance["node_coord"].tolist(),
            rounding="dimacs",
            time_windows=instance["time_window"].tolist(),
            service_times=instance["service_time"].tolist(),
            **common,
        )
    if weight_type == "EUC_2D" and "node_coord" in instance:
        return RoutingProblem.from_coordinates(
            coordinates=instance["node_coord"].tolist(), rounding="round", **common
        )
    if weight_type == "EXPLICIT" and "edge_weight" in instance:
        matrix = instance["edge_weight"]
        coordinates = (
            instance["node_coord"].tolist() if "node_coord" in instance else layout_from_distances(matrix)
        )
        return RoutingProblem(
            coordinates=tuple(map(tuple, coordinates)),
            distances=tuple(tuple(round(v) for v in row) for row in matrix.tolist()),
            **common,
        )
    raise ProblemError(
        f"{path}: EDGE_WEIGHT_TYPE: expected EUC_2D with coordinates or EXPLICIT, got {weight_type}"
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
