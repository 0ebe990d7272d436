"""Stopping a run from outside: SIGTERM to the driver (spot preemption, ``ray job stop``) or to a
worker; and following it from the driver (epochs finished, as a progress bar).

The driver's handler only sets a flag; a helper thread tells the workers through
a small ``RunControl`` actor that each worker waits on (one pending call, no
polling: the training processes keep their CPU), and the ranks agree to
stop at their next check, save a checkpoint and return. If they are not done
within ``spot.grace_period`` seconds the driver exits anyway, so the platform's
hard kill never lands on a half-written summary. A worker's side of it (``DriverStopWatcher``,
``defer_worker_sigterm``: SIGTERM to a worker checkpoints before it exits) is used by its session
(``mlray.train.session.RayTrainSession``).
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
from mlray.ray_private import set_worker_exit, worker_exit
from mlray.train.callbacks import LoopStart, TrainingCallback

log = logging.getLogger(__name__)


def start_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """A started daemon thread: it must never keep the driver alive once the run is over."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


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


def start_run_control() -> Any:
    """The run's ``RunControl``, on the driver's node and nowhere else: it must live as long as the driver
    does. Soft affinity is not enough: with a head that has no CPUs Ray may place it on a worker node,
    and losing that node (spot) then cuts every later worker off from the driver's stop request."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    driver_node = ray.get_runtime_context().get_node_id()
    pinned = NodeAffinitySchedulingStrategy(driver_node, soft=False)
    return RunControl.options(scheduling_strategy=pinned).remote()


class EpochProgressReporter(TrainingCallback):
    """Rank 0's callback: tells ``RunControl`` how far training is (fire and forget)."""

    rank_zero_only = True

    def __init__(self, control: Any, monitor: str):
        self.control, self.monitor = control, monitor

    def on_start(self, start: LoopStart) -> None:
        done = start.start_epoch - 1  # a resumed run starts where its checkpoint ended
        if done > 0:
            self.control.epoch_finished.remote(done, f"resumed after epoch {done}")

    def after_epoch(self, metrics: dict[str, Any]) -> None:
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

    thread = start_daemon(follow, "mlray-epoch-progress")
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
    start_daemon(relay, "mlray-sigterm-relay")
    try:
        yield signals
    finally:
        finished.set()
        signal.signal(signal.SIGTERM, previous)


class DriverStopWatcher:
    """Waits on the driver's RunControl actor in the background, so the loop only reads a flag.

    One pending ``wait_for_stop`` call per worker, not a poll: a poll every fraction
    of a second costs the training processes CPU and GIL time on every step.
    """

    def __init__(self, control: Any):
        self._control = control
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._wait, name="mlray-control-wait", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        import ray

        try:
            if ray.get(self._control.wait_for_stop.remote()):
                self._stop.set()
        except Exception as exc:  # noqa: BLE001 - a lost driver must not kill training
            log.warning("waiting for the driver's stop request ended: %s", exc)

    @property
    def requested(self) -> bool:
        return self._stop.is_set()


class WorkerPreempted(RuntimeError):
    """This worker got SIGTERM: its checkpoint is saved; Ray Train restarts the workers from it."""


def defer_worker_sigterm(flag: threading.Event, grace_period: float) -> Callable[[], None]:
    """Let SIGTERM to this worker process checkpoint before it exits.

    A Ray worker's SIGTERM handler exits the process at once. Python runs that
    handler in the main thread, which looks ``raise_sys_exit_with_custom_error_message``
    up at call time (``mlray.ray_private.worker_exit``): replacing it turns SIGTERM into
    a flag the loop sees at its next stop check. If the loop has not finished
    within ``grace_period`` the process exits as Ray would have. Returns the undo.
    """
    original = worker_exit()

    def restore() -> None:
        set_worker_exit(original)

    def exit_later(message: str, exit_code: int = 1) -> None:
        if "SIGTERM" not in str(message):
            original(message, exit_code)
            return
        log.warning("worker got SIGTERM: checkpointing, then exiting (at most %.0f s)", grace_period)
        flag.set()
        timer = threading.Timer(grace_period, os._exit, args=(exit_code,))
        timer.daemon = True
        timer.start()

    set_worker_exit(exit_later)
    return restore
