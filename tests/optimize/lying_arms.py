"""Arms that lie to the incumbent store, for the checker tests (importable by Ray workers as ``kind``).

Each wraps a real arm: the search is genuine, only what it publishes is falsified.
"""

from __future__ import annotations

from typing import Any

from mlray.optimize.arms.base import RoundResult, StoreLink
from mlray.optimize.arms.cpsat_jobshop import CpSatJobShopArm
from mlray.optimize.arms.ortools_routing import OrToolsRoutingArm
from mlray.optimize.arms.pyvrp_arm import PyVrpArm
from mlray.optimize.incumbent import Incumbent


class FalsifyingLink:
    """A ``StoreLink`` whose ``publish`` passes every solution through ``falsify`` first."""

    def __init__(self, link: StoreLink, falsify) -> None:
        self._link = link
        self._falsify = falsify

    def publish(self, objective: int, payload: dict[str, Any]) -> bool:
        return self._link.publish(*self._falsify(objective, payload))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)


class _Lying:
    """Mixed into a real arm: its rounds publish through a ``FalsifyingLink``."""

    def falsify(self, objective: int, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def solve_round(
        self, start: Incumbent | None, time_limit: float, link: StoreLink, round_index: int
    ) -> RoundResult:
        falsifying = FalsifyingLink(link, self.falsify)
        return super().solve_round(start, time_limit, falsifying, round_index)  # type: ignore[misc]


class _CostPlusOne(_Lying):
    def falsify(self, objective: int, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return objective + 1, payload


class OrToolsCostPlusOne(_CostPlusOne, OrToolsRoutingArm):
    """OR-Tools routing reporting each solution one unit dearer than it is."""


class PyVrpCostPlusOne(_CostPlusOne, PyVrpArm):
    """PyVRP reporting each solution one unit dearer than it is."""


class CpSatMakespanMinusOne(_Lying, CpSatJobShopArm):
    """CP-SAT reporting each schedule one time unit shorter than it is."""

    def falsify(self, objective: int, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return objective - 1, payload


class CpSatEverythingAtZero(_Lying, CpSatJobShopArm):
    """CP-SAT publishing, for each schedule found, one with every operation started at time 0
    (machines overlap, precedences break), at that schedule's own makespan: the longest operation."""

    def falsify(self, objective: int, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        jobs = self.problem.jobs  # type: ignore[attr-defined]
        return max(d for job in jobs for _, d in job), {"starts": [[0] * len(job) for job in jobs]}
