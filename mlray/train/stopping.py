"""Why a run ends, and the rules that end it early: early stopping and the three timeouts."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal


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
class Deadlines:
    """The three time limits. Wall-clock based, so every rank and every restart agrees.

    ``run_started`` is the driver's start time (time.time()), so a run restarted
    after a worker failure keeps counting its total runtime.
    """

    run_started: float
    total_runtime: float | None
    iteration: float | None
    no_improvement: float | None
    improvement_threshold: float = 0.0
    epoch_started: float = field(default_factory=time.time)
    last_improvement: float = field(default_factory=time.time)

    def start_epoch(self) -> None:
        self.epoch_started = time.time()

    def record_metric(self, tracker: MetricTracker, value: float) -> None:
        """Reset the no-improvement clock when ``value`` beats the best by the threshold."""
        if tracker.best is None:
            self.last_improvement = time.time()
            return
        gain = tracker.best - value if tracker.mode == "min" else value - tracker.best
        if gain > self.improvement_threshold:
            self.last_improvement = time.time()

    def during_epoch(self, now: float | None = None) -> StopReason | None:
        now = time.time() if now is None else now
        if self.total_runtime is not None and now - self.run_started > self.total_runtime:
            return StopReason.TOTAL_RUNTIME
        if self.iteration is not None and now - self.epoch_started > self.iteration:
            return StopReason.ITERATION
        return None

    def after_epoch(self, now: float | None = None) -> StopReason | None:
        now = time.time() if now is None else now
        reason = self.during_epoch(now)
        if reason is None and self.no_improvement is not None and now - self.last_improvement > self.no_improvement:
            return StopReason.NO_IMPROVEMENT
        return reason
