"""``ProblemKind``: everything the platform knows about one kind of problem, in one registry entry.

A kind names its problem and solution classes, reads its files, checks a solution independently,
draws it (optional), and proposes the default portfolio of arms. The optimizer, the readers'
dispatch and the output step ask the entry, never the problem's class, so a new kind is one module
holding its entry and one ``register_kind(ENTRY)`` line (``mlray.optimize.registry``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlray.config.optimize import ArmSection, SolverSection

Reader = Callable[[Path, str], Any]  # (path, configured kind or "auto") -> problem; ProblemError if not
Detector = Callable[[Path], bool]  # does this file hold this kind (auto detection)?
Checker = Callable[[Any, Any, "int | None"], list[str]]  # (problem, solution, reported) -> violations
Plotter = Callable[[Any, Any, Path], dict[str, Path]]  # (problem, solution, folder) -> {picture name: file}
DefaultArms = Callable[[Any, SolverSection], list[ArmSection]]  # (problem, solver section) -> arms


@dataclass(frozen=True)
class ProblemKind:
    """One problem kind. ``names``: the values of ``problem.kind`` (on the problem and in the config)
    it answers to (routing: cvrp and vrptw); default ``(name,)``. The solution class has
    ``to_payload()`` and ``from_payload(payload)``; objectives are integers in units of
    ``1/problem.scale``. ``solver_type``: the ``solver.type`` that, besides ``auto``, selects it."""

    name: str
    problem_type: type
    solution_type: type[Any]
    read: Reader
    detect: Detector
    check: Checker
    default_arms: DefaultArms
    plot: Plotter | None = None
    names: tuple[str, ...] = ()
    solver_type: str = "auto"

    @property
    def problem_kinds(self) -> tuple[str, ...]:
        return self.names or (self.name,)

    def solution_from_payload(self, payload: dict[str, Any]) -> Any:
        return self.solution_type.from_payload(payload)


def picture(name: str, draw: str) -> Plotter:
    """A plotter of one PNG, ``<name>.png``, drawn by ``plots.<draw>(problem, solution, path)``."""

    def plot(problem: Any, solution: Any, folder: Path) -> dict[str, Path]:
        from mlray.optimize import plots  # matplotlib only when a picture is drawn

        return {name: getattr(plots, draw)(problem, solution, folder / f"{name}.png")}

    return plot
