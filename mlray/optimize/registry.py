"""The problem kinds the platform solves, one ``ProblemKind`` entry each, and what goes through them.

Built in: job shop (``kinds/jobshop.py``) and routing (``kinds/routing.py``: cvrp, vrptw). A new kind is
one module with its entry, made known with one line: ``register_kind(MY_KIND)``. Reading a file
(``read_problem``), turning a stored payload back into a solution, checking it, drawing it and the
default portfolio all look the kind up here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlray.optimize.kinds.base import ProblemKind
from mlray.optimize.kinds.jobshop import JOBSHOP
from mlray.optimize.kinds.routing import ROUTING
from mlray.optimize.problems import ProblemError

_KINDS: dict[str, ProblemKind] = {}


def register_kind(kind: ProblemKind) -> ProblemKind:
    """Make ``kind`` known (again: a no-op). Its ``problem.kind`` names must be new."""
    if _KINDS.get(kind.name) is kind:
        return kind
    taken = {name: entry.name for entry in _KINDS.values() for name in ("auto", *entry.problem_kinds)}
    clashes = [name for name in (kind.name, *kind.problem_kinds) if name in taken or name in _KINDS]
    if clashes:
        raise ValueError(f"register_kind: {kind.name}: names {clashes} are taken by a registered kind")
    _KINDS[kind.name] = kind
    return kind


def registered_kinds() -> list[ProblemKind]:
    return list(_KINDS.values())


def problem_kind_names() -> list[str]:
    """Every value ``problem.kind`` may take: ``auto`` and each registered kind's names."""
    return ["auto", *(name for entry in _KINDS.values() for name in entry.problem_kinds)]


def kind_named(name: str) -> ProblemKind:
    for entry in _KINDS.values():
        if name in entry.problem_kinds:
            return entry
    raise ProblemError(f"problem.kind: expected one of {problem_kind_names()}, got {name!r}")


def kind_of(problem: Any) -> ProblemKind:
    for entry in _KINDS.values():
        if isinstance(problem, entry.problem_type):
            return entry
    expected = " or ".join(entry.problem_type.__name__ for entry in _KINDS.values())
    raise ProblemError(f"expected a problem of a registered kind ({expected}), got {type(problem).__name__}")


def read_problem(path: str | Path, kind: str = "auto") -> Any:
    """The problem in ``path``: of the configured ``kind``, or (``auto``) of the first kind whose
    detection claims the file, the last registered asked first (plug-ins before the built-ins)."""
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"problem.path: file not found: {path}")
    if kind != "auto":
        return kind_named(kind).read(path, kind)
    for entry in reversed(_KINDS.values()):
        if entry.detect(path):
            return entry.read(path, kind)
    raise ProblemError(f"problem.path: {path}: no registered problem kind reads this file")


def solution_from_payload(problem: Any, payload: dict[str, Any]) -> Any:
    return kind_of(problem).solution_from_payload(payload)


def check(problem: Any, solution: Any, reported_objective: int | None = None) -> list[str]:
    """The kind's own check of ``solution`` (and of the objective reported for it)."""
    kind = kind_of(problem)
    if not isinstance(solution, kind.solution_type):
        return [f"expected a {kind.solution_type.__name__}, got {type(solution).__name__}"]
    return kind.check(problem, solution, reported_objective)


register_kind(JOBSHOP)
register_kind(ROUTING)
