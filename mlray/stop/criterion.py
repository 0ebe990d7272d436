"""The protocol every stopping rule follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

Clock = Callable[[], float]
"""Seconds from some fixed point: ``time.monotonic`` in one process, ``time.time`` across processes."""


@runtime_checkable
class StoppingCriterion(Protocol):
    """Called with the best value so far (None before there is one): True when the job should stop.

    ``name`` is what a job reports when this rule ended it (``FirstOf.fired``).
    """

    name: str

    def __call__(self, best: float | None) -> bool: ...
