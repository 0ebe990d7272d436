"""Waiting for a condition with a deadline (never a bare sleep in place of it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval_s: float = 0.2) -> Any:
    """The first truthy value of ``condition()``, polled every ``interval_s`` until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
