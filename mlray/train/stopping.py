"""Why a run ends, and the rules that end it early: early stopping and the three timeouts (mlray.stop)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from mlray.config.train import TrainingTimeoutsConfig
from mlray.stop import Clock, FirstOf, MaxRuntime, NoImprovement, StoppingCriterion


class StopReason(str, Enum):
    """The run's final ``status``: which rule ended it."""

    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"
    TOTAL_RUNTIME = "timeout_total_runtime"
    ITERATION = "timeout_iteration"
    NO_IMPROVEMENT = "timeout_no_improvement"
    PREEMPTED = "preempted"

    @classmethod
    def by_code(cls, code: int) -> StopReason | None:
        """Reasons travel between ranks as small integers (0 = keep going)."""
        return _BY_CODE.get(code)

    @property
    def code(self) -> int:
        return _CODES[self]


_CODES = {reason: index for index, reason in enumerate(StopReason)}
_BY_CODE = {index: reason for reason, index in _CODES.items() if index > 0}


@dataclass
class MetricTracker:
    """Best value of the monitored metric; ``improved`` needs a gain of more than ``min_delta``."""

    mode: Literal["min", "max"]
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int | None = None

    def is_improvement(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        gain = self.best - value if self.mode == "min" else value - self.best
        return gain > self.min_delta

    def update(self, value: float, epoch: int) -> bool:
        if self.is_improvement(value):
            self.best, self.best_epoch = value, epoch
            return True
        return False


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs in a row without an improvement (as ``MetricTracker`` judges it)."""

    patience: int
    epochs_without_improvement: int = 0

    def record(self, improved: bool) -> bool:
        """Record whether an epoch improved; True when training should stop."""
        self.epochs_without_improvement = 0 if improved else self.epochs_without_improvement + 1
        return self.epochs_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_without_improvement": self.epochs_without_improvement}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs_without_improvement = int(state.get("epochs_without_improvement", 0))


@dataclass
class TrainingStops:
    """The timeouts section's rules (mlray.stop), each named for the ``StopReason`` it ends the run with.

    Wall-clock based, so every rank and every restart agrees: the total runtime counts
    from the driver's start (``run_started``, time.time()), so a run restarted after a
    worker failure keeps counting it. ``iteration`` restarts with every epoch.
    """

    total_runtime: MaxRuntime | None
    iteration: MaxRuntime | None
    no_improvement: NoImprovement | None

    @classmethod
    def from_config(cls, timeouts: TrainingTimeoutsConfig, mode: Literal["min", "max"], run_started: float,
                    clock: Clock = time.time) -> TrainingStops:
        total, epoch, stalled = timeouts.total_runtime, timeouts.iteration, timeouts.no_improvement
        relative = timeouts.improvement.relative
        return cls(
            None if total is None else MaxRuntime(total, name=StopReason.TOTAL_RUNTIME.value,
                                                  started=run_started, clock=clock),
            None if epoch is None else MaxRuntime(epoch, name=StopReason.ITERATION.value, clock=clock),
            None if stalled is None else NoImprovement(
                stalled, timeouts.improvement.threshold, mode="relative" if relative else "absolute",
                direction=mode, name=StopReason.NO_IMPROVEMENT.value, clock=clock),
        )

    def start_epoch(self) -> None:
        if self.iteration is not None:
            self.iteration.restart()

    def during_epoch(self) -> StopReason | None:
        """The time limits, checked between batches."""
        return _reason(FirstOf(*_present(self.total_runtime, self.iteration)), None)

    def after_epoch(self, value: float, best: float | None) -> StopReason | None:
        """All the limits once the epoch's ``value`` of the monitored metric is known; an improvement is
        measured from ``best``, the metric's best before this epoch (None: ``value`` counts)."""
        if self.no_improvement is not None:
            self.no_improvement.rebase(best)
        return _reason(FirstOf(*_present(self.total_runtime, self.iteration, self.no_improvement)), value)


def _present(*criteria: StoppingCriterion | None) -> list[StoppingCriterion]:
    return [criterion for criterion in criteria if criterion is not None]


def _reason(criteria: FirstOf, value: float | None) -> StopReason | None:
    name = criteria.reason(value)
    return None if name is None else StopReason(name)
