"""Stopping a run from outside: SIGTERM to the driver (spot preemption, ``ray job stop``).

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
from typing import Any

import ray

from mlray.entrypoint import EXIT_PREEMPTED

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0)
class RunControl:
    """An async actor, so ``wait_for_stop`` calls from every worker wait side by side."""

    def __init__(self) -> None:
        self._requested = asyncio.Event()

    async def request_stop(self) -> None:
        self._requested.set()

    async def wait_for_stop(self) -> bool:
        await self._requested.wait()
        return True


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
