"""Benchmark instances shipped with mlray, with their best-known values beside them.

``jsp/`` job shop (JSPLIB format; ``scheduleopt_bks.json``, ``instances.json`` hold the bounds),
``cvrp/`` VRPLIB ``.vrp`` with ``.sol``, ``vrptw/`` Solomon ``.txt`` and Gehring-Homberger ``.vrp``
with ``.sol``. Origin and licence of each file: SOURCES.md beside this file.

An instance is named by its path under this folder (``"jsp/ft06"``, ``"cvrp/E-n13-k4.vrp"``) or by its
bare name (``"ft06"``, ``"E-n13-k4"``)::

    from mlray.optimize import instances, read_problem
    problem = read_problem(instances.path("ft06"))
"""

from __future__ import annotations

import collections
import functools
from pathlib import Path

INSTANCES_ROOT = Path(__file__).resolve().parent
PROBLEM_FOLDERS = ("jsp", "cvrp", "vrptw")
_NOT_PROBLEMS = {".sol", ".json", ".md"}  # best-known solutions and bound catalogues beside the problems


@functools.cache
def _by_name() -> dict[str, Path]:
    files = sorted(
        file
        for folder in PROBLEM_FOLDERS
        for file in (INSTANCES_ROOT / folder).iterdir()
        if file.is_file() and file.suffix not in _NOT_PROBLEMS
    )
    stems = collections.Counter(file.stem for file in files)
    names = {file.relative_to(INSTANCES_ROOT).as_posix(): file for file in files}
    return names | {file.stem: file for file in files if stems[file.stem] == 1}


def available() -> list[str]:
    """Every shipped problem file, by its path under the instances folder (``"jsp/ft06"``, ...)."""
    return sorted(name for name in _by_name() if "/" in name)


def path(name: str) -> Path:
    """The shipped file of instance ``name`` (``"jsp/ft06"`` or ``"ft06"``); ValueError if there is none."""
    try:
        return _by_name()[name]
    except KeyError:
        raise ValueError(
            f"no shipped instance named {name!r} (expected a name from mlray.optimize.instances.available() "
            "such as 'jsp/ft06' or 'cvrp/E-n13-k4.vrp', or a bare one such as 'ft06')"
        ) from None


def resolve(reference: str | Path) -> Path:
    """An existing file as given, else the shipped instance of that name; ValueError naming both tries."""
    given = Path(reference)
    if given.is_file():
        return given
    try:
        return path(str(reference))
    except ValueError as exc:
        raise ValueError(f"not a file, and {exc}") from None
