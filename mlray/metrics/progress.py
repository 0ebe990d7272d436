"""Progress a person can follow: a bar on a terminal, plain periodic lines elsewhere (job logs).

One small helper for every long step (training epochs, solver time with the incumbent, materialization,
demo queries; batch inference shows Ray Data's own, which behaves the same way)::

    with Progress("solve ft10", total=60, unit="s") as progress:
        progress.update(12.5, "incumbent 930")
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    def __init__(self, label: str, total: float | None = None, unit: str = "", stream: TextIO | None = None,
                 interval_s: float = 10.0):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s  # plain lines: at most one per interval, so logs stay readable
        self.started = time.monotonic()
        self._last_line = -float("inf")
        self.done = 0.0
        self.note = ""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: float, note: str = "") -> None:
        self.done, self.note = done, note
        now = time.monotonic()
        if self.interactive:
            self.stream.write("\r" + self.line(bar=True))
            self.stream.flush()
        elif now - self._last_line >= self.interval_s:
            self._last_line = now
            self.stream.write(self.line(bar=False) + "\n")
            self.stream.flush()

    def line(self, bar: bool) -> str:
        elapsed = time.monotonic() - self.started
        if self.total:
            share = min(max(self.done / self.total, 0.0), 1.0)
            amount = f"{self.done:g}/{self.total:g}{self.unit} ({100 * share:.0f}%)"
            drawn = "#" * round(share * BAR_WIDTH)
            amount = f"[{drawn:<{BAR_WIDTH}}] {amount}" if bar else amount
        else:
            amount = f"{self.done:g}{self.unit}"
        note = f" {self.note}" if self.note else ""
        return f"{self.label}: {amount} {elapsed:.0f}s{note}"

    def close(self) -> None:
        """The final state on its own line (a bar ends its line; plain output always says where it ended)."""
        self.stream.write(("\r" if self.interactive else "") + self.line(bar=self.interactive) + "\n")
        self.stream.flush()
