"""A time limit."""

from __future__ import annotations

import time

from mlray.stop.criterion import Clock


class MaxRuntime:
    """Stop once ``seconds`` have passed since ``started`` (default: when it was made).

    ``started`` may come from another process when ``clock`` is wall time (training's
    total runtime counts from the driver's start, across worker restarts); ``restart``
    counts again from now (training's limit per epoch).
    """

    def __init__(self, seconds: float, *, name: str = "max_runtime", started: float | None = None,
                 clock: Clock = time.monotonic) -> None:
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self.seconds, self.name, self.clock = seconds, name, clock
        self.started = clock() if started is None else started

    def restart(self) -> None:
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def __call__(self, best: float | None = None) -> bool:
        return self.elapsed() >= self.seconds
