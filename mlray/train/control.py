"""Stopping a run from outside: SIGTERM to the driver (spot preemption, ``ray job stop``); and
following it from the driver (epochs finished, as a progress bar).

The driver's handler only sets a flag; a helper thread tells the workers through
a small ``RunControl`` actor that each worker waits on (one pending call, no
polling: the training processes keep their CPU), and the ranks agree to
stop at their next check, save a checkpoint and return. If they are not done
within ``spot.grace_period`` seconds the driver exits anyway, so the platform's
hard kill never lands on a half-written summary.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import ray

from mlray.entrypoint import EXIT_PREEMPTED
from mlray.metrics.progress import Progress

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class RunControl:
    """An async actor, so ``wait_for_stop`` calls from every worker wait side by side.

    It also holds rank 0's last finished epoch, which the driver shows as a progress bar
    (``follow_epochs``): Ray Train's own callbacks run in its controller actor, not on the driver's terminal.
    """

    def __init__(self) -> None:
        self._requested = asyncio.Event()
        self._epoch, self._note = 0, ""

    async def request_stop(self) -> None:
        self._requested.set()

    async def wait_for_stop(self) -> bool:
        await self._requested.wait()
        return True

    async def epoch_finished(self, epoch: int, note: str) -> None:
        self._epoch, self._note = max(self._epoch, epoch), note

    async def progress(self) -> tuple[int, str]:
        return self._epoch, self._note


class EpochProgressReporter:
    """Rank 0's epoch hook: tells ``RunControl`` how far training is (fire and forget)."""

    def __init__(self, control: Any, monitor: str):
        self.control, self.monitor = control, monitor

    def __call__(self, metrics: dict[str, Any]) -> None:
        if "start_epoch" in metrics:  # a resumed run starts where its checkpoint ended
            done = int(metrics["start_epoch"]) - 1
            if done > 0:
                self.control.epoch_finished.remote(done, f"resumed after epoch {done}")
            return
        shown = [name for name in ("train_loss", self.monitor) if isinstance(metrics.get(name), float)]
        self.control.epoch_finished.remote(
            int(metrics["epoch"]), " ".join(f"{name} {metrics[name]:.4g}" for name in dict.fromkeys(shown)))


@contextmanager
def follow_epochs(control: Any, label: str, total_epochs: int, poll_s: float = 1.0,
                  stream: TextIO | None = None) -> Iterator[Progress]:
    """A progress bar of finished epochs on the driver's terminal (plain periodic lines in job logs)."""
    progress = Progress(label, total=total_epochs, unit=" epochs", stream=stream)
    finished = threading.Event()

    def follow() -> None:
        shown = None
        while not finished.wait(poll_s):
            try:
                epoch, note = ray.get(control.progress.remote(), timeout=max(poll_s, 5.0))
            except (ray.exceptions.RayError, TimeoutError):
                continue  # the bar waits; training decides how the run ends
            if (epoch, note) != shown:
                shown = (epoch, note)
                progress.update(epoch, note)

    thread = threading.Thread(target=follow, name="mlray-epoch-progress", daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        finished.set()
        thread.join(poll_s + 10)
        try:
            progress.done, progress.note = ray.get(control.progress.remote(), timeout=10)
        except (ray.exceptions.RayError, TimeoutError):
            pass
        progress.close()


class DriverSignals:
    """What the driver saw: when SIGTERM arrived, if it did."""

    def __init__(self) -> None:
        self.received = threading.Event()
        self.received_at: float | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.received.is_set():
            self.received_at = time.time()
            self.received.set()


@contextmanager
def stop_on_sigterm(control: Any, grace_period: float,
                    on_grace_exceeded: Callable[[], None]) -> Iterator[DriverSignals]:
    """Route SIGTERM to the workers for the duration of a fit (main thread only)."""
    signals = DriverSignals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    finished = threading.Event()

    def relay() -> None:
        while not signals.received.wait(0.2):
            if finished.is_set():
                return
        log.warning("SIGTERM: asking workers to checkpoint and stop (grace period %.0f s)", grace_period)
        control.request_stop.remote()
        if not finished.wait(grace_period):
            log.error("workers did not stop within the grace period of %.0f s: exiting", grace_period)
            on_grace_exceeded()
            os._exit(EXIT_PREEMPTED)

    previous = signal.signal(signal.SIGTERM, signals._handle)
    thread = threading.Thread(target=relay, name="mlray-sigterm-relay", daemon=True)
    thread.start()
    try:
        yield signals
    finally:
        finished.set()
        signal.signal(signal.SIGTERM, previous)
