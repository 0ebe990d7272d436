"""A limit on time without progress."""

from __future__ import annotations

import time
from typing import Literal

from mlray.stop.criterion import Clock


class NoImprovement:
    """Stop when the best value has not improved by more than ``threshold`` for ``seconds``.

    A gain is measured from ``reference``, the last value that counted as an improvement:
    more than ``threshold`` itself (``mode="absolute"``) or more than ``threshold`` x
    |reference| (``"relative"``) counts, and restarts the clock. The first value counts
    whatever it is. ``direction``: "min" when lower is better, "max" when higher is. No
    value yet (``best`` None): the clock runs but the rule never fires. ``rebase`` sets
    the reference from outside (training measures from the monitored metric's best).
    """

    def __init__(self, seconds: float, threshold: float = 0.0, *,
                 mode: Literal["absolute", "relative"] = "absolute", direction: Literal["min", "max"] = "min",
                 name: str = "no_improvement", started: float | None = None,
                 clock: Clock = time.monotonic) -> None:
        if seconds < 0 or threshold < 0:
            raise ValueError(f"seconds and threshold must be >= 0, got {seconds} and {threshold}")
        if mode not in ("absolute", "relative") or direction not in ("min", "max"):
            raise ValueError(f"mode: 'absolute' or 'relative', direction: 'min' or 'max'; "
                             f"got {mode!r}, {direction!r}")
        self.seconds, self.threshold, self.mode, self.direction = seconds, threshold, mode, direction
        self.name, self.clock = name, clock
        self.reference: float | None = None
        self.last_improvement = clock() if started is None else started

    def is_improvement(self, value: float) -> bool:
        if self.reference is None:
            return True
        gain = self.reference - value if self.direction == "min" else value - self.reference
        least = self.threshold * abs(self.reference) if self.mode == "relative" else self.threshold
        return gain > least  # a NaN value never counts

    def rebase(self, reference: float | None) -> None:
        """Measure the next gains from ``reference`` (None: the next value counts)."""
        self.reference = reference

    def seconds_without(self) -> float:
        return self.clock() - self.last_improvement

    def __call__(self, best: float | None) -> bool:
        if best is None:
            return False
        if self.is_improvement(best):
            self.reference, self.last_improvement = best, self.clock()
        return self.seconds_without() >= self.seconds
