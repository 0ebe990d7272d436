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

The VRPLIB reader is in ``vrplib_reader.py``; this module detects the format and reads Solomon and job shop.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from mlray.optimize.problems import JobShopProblem, ProblemError, RoutingProblem
from mlray.optimize.vrplib_reader import read_vrplib, routing_best_known, vrplib_keywords, vrplib_type

FileFormat = Literal["vrplib", "solomon", "jobshop"]

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


