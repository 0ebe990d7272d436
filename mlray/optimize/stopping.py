"""When the portfolio's search ends: solver.time_limit and the job's timeouts section as stopping rules.

All of them are graceful (the store's stop flag, then the best solution is
returned) and the rule that fired is the solve's status: ``time_limit`` or
``total_runtime`` (the search deadline, whichever ends first: the total runtime
counts from the call, actor start-up included, less a margin for checking, plots
and MLflow) and ``no_improvement`` (the incumbent has not improved by
``timeouts.improvement`` for that long, counted from the search start).
``timeouts.round`` is no stopping rule: it ends an arm's round, not the search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlray.config.optimize import OptimizeJobConfig
from mlray.stop import Clock, FirstOf, MaxRuntime, NoImprovement, StoppingCriterion


@dataclass(frozen=True)
class SearchStopping:
    time_limit: float  # search seconds, counted once every arm is ready
    total_deadline: float | None  # time.monotonic() by which the search must end (total_runtime)
    round_limit: float | None  # seconds one arm round may take
    no_improvement: float | None
    improvement_threshold: float
    relative: bool

    @classmethod
    def from_config(cls, config: OptimizeJobConfig, started: float) -> SearchStopping:
        """``started``: time.monotonic() when the solve was called."""
        timeouts, total_deadline = config.timeouts, None
        if timeouts.total_runtime is not None:
            # Leave a margin of the total runtime for checking, plots and MLflow.
            total = timeouts.total_runtime
            total_deadline = started + total - min(5.0, 0.1 * total)
        return cls(config.solver.time_limit, total_deadline, timeouts.round, timeouts.no_improvement,
                   timeouts.improvement.threshold, timeouts.improvement.relative)

    def search_seconds(self, searching_since: float) -> tuple[float, str]:
        """How long the search may go on from ``searching_since``, and the status when it runs out."""
        if self.total_deadline is not None and self.total_deadline - searching_since < self.time_limit:
            return max(self.total_deadline - searching_since, 0.0), "total_runtime"
        return self.time_limit, "time_limit"

    def criteria(self, searching_since: float, clock: Clock = time.monotonic) -> FirstOf:
        """The rules the driver asks with the incumbent's objective (None before there is one) at each poll;
        the name of the one that fires is the stop reason."""
        seconds, reason = self.search_seconds(searching_since)
        deadline = MaxRuntime(seconds, name=reason, started=searching_since, clock=clock)
        rules: list[StoppingCriterion] = [deadline]
        if self.no_improvement is not None:
            rules.append(NoImprovement(self.no_improvement, self.improvement_threshold,
                                       mode="relative" if self.relative else "absolute",
                                       started=searching_since, clock=clock))
        return FirstOf(*rules)
