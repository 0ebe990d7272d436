"""How the portfolio's solver threads are split between its arms: a policy the controller asks at each poll.

``CpuSplit`` is the base; ``RaceThenFocus`` the default: every arm starts with an equal share (a race).
After ``race_fraction`` of the search time the threads go to the leading arm (the one holding the best
incumbent), up to what it can use (``Arm.thread_cap``: CP-SAT any number, PyVRP and OR-Tools routing
one), the rest to the next arms in rank; an arm left with none parks. The total never exceeds the
race's, so the portfolio uses the CPUs it was given, no more. The split is redone when an arm ends or is
dropped (or lost).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any


class CpuSplit(ABC):
    """Asked at every poll with the incumbent history and the live arms; answers a new split or None."""

    def begin(self, searching_since: float, search_seconds: float) -> None:
        """The search started at ``searching_since`` (time.monotonic()) for ``search_seconds``."""

    @property
    def focused(self) -> bool:
        """Whether the threads have left the equal split of the race."""
        return False

    @abstractmethod
    def decide(self, history: Sequence[dict[str, Any]], live: set[str], now: float) -> dict[str, int] | None:
        """Threads per live arm when the split should change now, else None."""


class RaceThenFocus(CpuSplit):
    """The default split: race on equal threads, then focus on the leader (see the module docstring)."""

    def __init__(
        self, arms: Sequence[str], caps: dict[str, int | None], total: int, race_fraction: float
    ) -> None:
        self.arms = list(arms)  # in the portfolio's order
        self.caps = caps
        self.total = total
        self.race_fraction = race_fraction
        self.race_end = float("inf")
        self.allocated_for: set[str] | None = None  # the arms the current split was made for

    def begin(self, searching_since: float, search_seconds: float) -> None:
        self.race_end = searching_since + self.race_fraction * search_seconds

    @property
    def focused(self) -> bool:
        return self.allocated_for is not None

    def decide(self, history: Sequence[dict[str, Any]], live: set[str], now: float) -> dict[str, int] | None:
        # The race goes on until someone leads; once split, a dropped or lost arm re-splits.
        leads = self.allocated_for is not None or any(h["arm"] in live for h in history)
        if self.race_fraction >= 1 or now < self.race_end or not leads or self.allocated_for == live:
            return None
        self.allocated_for = set(live)
        return allocate(history, [name for name in self.arms if name in live], self.caps, self.total)


def allocate(
    history: Sequence[dict[str, Any]], arms: Sequence[str], caps: dict[str, int | None], total: int
) -> dict[str, int]:
    """Solver threads per running arm: the arms ranked by the best incumbent each found
    (arms that found none last, in their given order), each taking what it can use of
    what is left. The first arm with no cap takes all that remains."""
    best: dict[str, int] = {}
    for entry in history:
        if entry["arm"] in arms:
            best[entry["arm"]] = min(best.get(entry["arm"], entry["objective"]), entry["objective"])
    ranked = sorted(arms, key=lambda a: (a not in best, best.get(a, 0), arms.index(a)))
    threads, left = {}, total
    for arm in ranked:
        cap = caps.get(arm)
        threads[arm] = left if cap is None else min(cap, left)
        left -= threads[arm]
    return threads
