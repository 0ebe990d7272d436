"""``OptimizationResult``: what a solve returns (objective, checked solution, history, incidents).

Its own module, so MLflow logging (``tracking.py``) and the optimizer both import it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlray.optimize.arms.base import ArmStats
from mlray.optimize.problems import Solution


@dataclass
class OptimizationResult:
    """Objectives in the problem's own units (routing: distance, job shop: makespan)."""

    run_name: str
    problem_name: str
    kind: str
    status: str
    objective: float | None
    best_bound: float | None
    best_known: float | None
    solution: Solution | None
    feasible: bool
    violations: list[str]
    arm_stats: list[ArmStats]
    history: list[dict[str, Any]]
    bound_history: list[dict[str, Any]]
    solve_seconds: float
    elapsed_seconds: float
    resumed_from: float | None = None
    checkpoint_uri: str | None = None
    plots: dict[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    allocation_history: list[dict[str, Any]] = field(default_factory=list)  # {"time", "threads"}
    # Faults met and survived: checkpoint writes that failed or hung, an unusable checkpoint, store restarts.
    incidents: list[dict[str, Any]] = field(default_factory=list)  # {"time", "what"}
    checkpoint_writes: int = 0
    checkpoint_pending: bool = False  # the final incumbent could not be written (storage still failing)
    store_restarts: int = 0
    states: list[str] = field(default_factory=list)  # the portfolio controller's states, in order

    def gap(self, best_known: float | None = None) -> float | None:
        """Relative distance of the objective above ``best_known`` (default: the problem's)."""
        reference = self.best_known if best_known is None else best_known
        if self.objective is None or not reference:
            return None
        return (self.objective - reference) / reference

    @property
    def optimality_gap(self) -> float | None:
        if self.objective is None or self.best_bound is None or not self.objective:
            return None
        return (self.objective - self.best_bound) / self.objective

    def incumbent_arms(self) -> list[str]:
        return [h["arm"] for h in self.history]

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "problem": self.problem_name,
            "kind": self.kind,
            "objective": self.objective,
            "best_bound": self.best_bound,
            "best_known": self.best_known,
            "gap_to_best_known": None if self.gap() is None else round(self.gap(), 6),
            "optimality_gap": None if self.optimality_gap is None else round(self.optimality_gap, 6),
            "feasible": self.feasible,
            "violations": self.violations[:5],
            "improvements": len(self.history),
            "found_by": self.history[-1]["arm"] if self.history else None,
            "arms": {
                s.name: {
                    "rounds": s.rounds,
                    "improvements": s.improvements,
                    "ended_by": s.ended_by,
                    "handovers": s.handovers,
                    "taken_from": s.taken_from,
                    "given": s.given,
                    "restarted": s.restarted,
                    "threads": s.threads,
                    "error": s.error,
                }
                for s in self.arm_stats
            },
            "resumed_from": self.resumed_from,
            "incidents": [i["what"] for i in self.incidents],
            "checkpoint_writes": self.checkpoint_writes,
            "checkpoint_pending": self.checkpoint_pending,
            "store_restarts": self.store_restarts,
            "solve_s": self.solve_seconds,
            "plots": self.plots,
            "mlflow_run_id": self.mlflow_run_id,
        }
