"""A daemon thread that runs a replica's periodic chores (rollout sync, log flushes).

A thread rather than an asyncio task: the same chores serve the async and the
sync deployment, and blocking calls in them never stall request handling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, interval_s: float, chores: list[Callable[[], None]], name: str = "mlray-ticker"):
        self.interval_s = interval_s
        self.chores = chores
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for chore in self.chores:
                try:
                    chore()
                except Exception:  # noqa: BLE001 - one failed round must not end the chores
                    log.exception("periodic %s failed", getattr(chore, "__qualname__", chore))
