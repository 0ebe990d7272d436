"""Optimization metrics, by run and problem (and arm): the portfolio driver records the store's view,
each arm actor its own rounds."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from mlray.metrics.base import MetricSpec, Recorder

RUN = ("run", "problem")  # not "instance": Prometheus sets that to the scrape target
INCUMBENT = MetricSpec(
    "mlray_optimize_incumbent_objective", "gauge", "Objective of the best solution found.", RUN
)
BOUND = MetricSpec("mlray_optimize_best_bound", "gauge", "Best proven bound on the objective.", RUN)
GAP = MetricSpec(
    "mlray_optimize_gap_to_best_known_ratio", "gauge", "(incumbent - best known) / best known.", RUN
)
LAST_IMPROVEMENT = MetricSpec(
    "mlray_optimize_last_improvement_timestamp_seconds", "gauge",
    "When the incumbent last improved (Unix time); time() minus it: how long the solver has not improved.",
    RUN,
)
IMPROVEMENTS = MetricSpec(
    "mlray_optimize_improvements", "counter", "Incumbents an arm found that improved the run's best.",
    (*RUN, "arm"),
)
ROUNDS = MetricSpec("mlray_optimize_rounds", "counter", "Solver rounds an arm finished.", (*RUN, "arm"))
THREADS = MetricSpec("mlray_optimize_threads", "gauge", "Solver threads allotted to an arm.", (*RUN, "arm"))
ARM_STATE = MetricSpec(
    "mlray_optimize_arm_state", "gauge", "1 for an arm's current state (running or how it ended), else 0.",
    (*RUN, "arm", "state"),
)
ARM_STATES = ("running", "time_limit", "optimal", "no_improvement", "total_runtime", "stopped", "dropped",
              "killed")

ALL = (INCUMBENT, BOUND, GAP, LAST_IMPROVEMENT, IMPROVEMENTS, ROUNDS, THREADS, ARM_STATE)


class OptimizeMetrics(Recorder):
    def __init__(self, enabled: bool, run: str, problem: str, scale: float = 1.0,
                 best_known: float | None = None):
        super().__init__(enabled, run=run, problem=problem)
        self.scale = scale
        self.best_known = best_known
        self._improvements_seen: Counter[str] = Counter()

    def report(self, report: Any, threads: Mapping[str, int], ended: Mapping[str, Any]) -> None:
        """The store's latest report, the threads per arm and the arms that ended (``ArmStats``)."""
        if not self.enabled:
            return
        if report.objective is not None:
            objective = report.objective / self.scale
            self.set(INCUMBENT, objective)
            if self.best_known:
                self.set(GAP, (objective - self.best_known) / abs(self.best_known))
        if report.bound is not None:
            self.set(BOUND, report.bound / self.scale)
        if report.incumbent is not None:
            self.set(LAST_IMPROVEMENT, time.time() - report.seconds_since_improvement)
        found = Counter(entry["arm"] for entry in report.history)
        for arm, count in found.items():
            self.inc(IMPROVEMENTS, count - self._improvements_seen[arm], arm=arm)
        self._improvements_seen = found
        for arm, count in threads.items():
            self.set(THREADS, count, arm=arm)
            state = ended[arm].ended_by if ended.get(arm) is not None else "running"
            self.arm_state(arm, state)

    def arm_state(self, arm: str, state: str) -> None:
        state = state if state in ARM_STATES else "stopped"
        for each in ARM_STATES:
            self.set(ARM_STATE, 1.0 if each == state else 0.0, arm=arm, state=each)

    def round(self, arm: str) -> None:
        self.inc(ROUNDS, arm=arm)
