"""The training loop's seam for what watches or paces it, after Ray Train V2's ``UserCallback``.

``train_loop(settings, data, session, callbacks=[...])`` calls each callback at the points below, on
every rank (a callback with ``rank_zero_only`` only on rank 0). MLflow's epoch metrics
(``tracking.EpochLogger``), the driver's progress bar (``control.EpochProgressReporter``), the step log
of the tests and benchmarks (``step_log.StepLog``) and the benchmark's pacing are callbacks.
``run_training(config, callbacks=[...])`` ships them to every Ray Train worker, so they must pickle:
open files or connections in ``on_start``, not in ``__init__``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class LoopStart:
    """Where a rank's loop starts: after restoring a checkpoint, before its first step."""

    rank: int
    world_size: int
    start_epoch: int  # the first epoch run now (a resumed run's may be past 1, or part-way done)
    skipped_checkpoints: int  # damaged checkpoints passed over on restore


class TrainingCallback:
    """Override what you need; every hook does nothing by default. A hook that raises ends the loop."""

    rank_zero_only: ClassVar[bool] = False

    def on_start(self, start: LoopStart) -> None:
        """Each time the loop starts (first run, restart, resume)."""

    def after_step(self, step: int, loss: float) -> None:
        """After each optimizer step (``step`` counts from 1 over the whole run)."""

    def after_epoch(self, metrics: dict[str, Any]) -> None:
        """An epoch's metrics, before it is reported (a Tune scheduler may end the trial inside the report)."""

    def after_report(self, metrics: dict[str, Any]) -> None:
        """Once the epoch's report returned (its checkpoint stored, if any); the epoch clock is stopped
        until the next epoch begins, so a wait here is in no epoch's time."""

    def on_end(self, last: dict[str, Any]) -> None:
        """The loop is done (completed or stopped); ``last``: the last reported metrics."""


class Callbacks:
    """The callbacks that apply on ``rank``, called in order."""

    def __init__(self, callbacks: Iterable[TrainingCallback], rank: int):
        self._callbacks = [callback for callback in callbacks if rank == 0 or not callback.rank_zero_only]

    def on_start(self, start: LoopStart) -> None:
        for callback in self._callbacks:
            callback.on_start(start)

    def after_step(self, step: int, loss: float) -> None:
        for callback in self._callbacks:
            callback.after_step(step, loss)

    def after_epoch(self, metrics: dict[str, Any]) -> None:
        for callback in self._callbacks:
            callback.after_epoch(metrics)

    def after_report(self, metrics: dict[str, Any]) -> None:
        for callback in self._callbacks:
            callback.after_report(metrics)

    def on_end(self, last: dict[str, Any]) -> None:
        for callback in self._callbacks:
            callback.on_end(last)
