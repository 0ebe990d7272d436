"""Canary rollouts: weighted version choice and the step / promote / roll back state machine.

Serve has no weighted split between model versions, so the ingress picks the
version per request (``choose_version``) from the shared ``RolloutState``, and
one ``Rollout`` (inside the rollout controller deployment) collects every
replica's per-version figures, closes evaluation windows and decides:

* a window where the canary served at least ``min_requests`` and broke a rule
  rolls it back at once (weight 0, all traffic to stable). The rules: error rate
  above ``max_error_rate`` or p99 above ``max_p99_ms`` (absolute), or, when stable
  also served ``min_requests`` in the window, error rate above stable's plus
  ``max_error_rate_margin`` or p99 above stable's times ``max_p99_ratio``
  (relative: load that slows both versions trips neither);
* ``promote_after_windows`` healthy windows in a row move the canary to the next
  of ``promotion_steps`` above its share; the step to 1.0 promotes it: it becomes
  stable and takes all traffic;
* windows with too few canary requests neither count nor break the streak.

Every state carries its ``(epoch, generation)``: the generation counts changes,
the epoch counts controller incarnations (see ``mlray.serve.rollout.store``).
Replicas and the store order states by that pair, never by arrival. The step
reached and the healthy windows at it are part of the state, so they are
persisted with it and a restarted controller carries on from them. The per-version figures the windows
judge are ``mlray.serve.rollout.figures``.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mlray.config.inference import ModelsSection, RolloutSection
from mlray.serve.rollout.figures import VersionFigures

Status = Literal["stable", "canary", "promoted", "rolled_back"]


@dataclass
class RolloutState:
    """What every ingress replica needs to route: versions, stable, canary and its weight."""

    versions: dict[str, str]
    stable: str
    canary: str | None = None
    canary_weight: float = 0.0
    status: Status = "stable"
    healthy_windows: int = 0  # in a row, at the current step
    steps_taken: int = 0  # promotion steps taken by this canary
    windows_judged: int = 0  # windows this canary had enough requests in
    reason: str = ""
    generation: int = 0
    epoch: int = 0

    @property
    def version(self) -> tuple[int, int]:
        """Order of states: a later controller incarnation wins, then the later change."""
        return (self.epoch, self.generation)

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RolloutState:
        return cls(**data)

    @classmethod
    def initial(cls, models: ModelsSection, rollout: RolloutSection) -> RolloutState:
        has_canary = rollout.canary is not None and rollout.canary_weight > 0
        return cls(
            versions=dict(models.versions),
            stable=models.stable,
            canary=rollout.canary,
            canary_weight=rollout.canary_weight if rollout.canary else 0.0,
            status="canary" if has_canary else "stable",
        )


def key_fraction(key: str) -> float:
    """A stable position in [0, 1) for a request key (same key, same side of the split)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_version(state: RolloutState, key: str | None = None, rng: random.Random | None = None) -> str:
    if state.canary is None or state.canary_weight <= 0:
        return state.stable
    position = key_fraction(key) if key else (rng or random).random()
    return state.canary if position < state.canary_weight else state.stable


@dataclass
class RolloutUpdate:
    """A runtime change; fields left None stay as they are."""

    canary: str | None = None
    canary_weight: float | None = None
    stable: str | None = None
    versions: dict[str, str] | None = None
    clear_canary: bool = False


class Rollout:
    """The single source of truth for a rollout; fed by replicas' reports."""

    def __init__(
        self,
        models: ModelsSection,
        policy: RolloutSection,
        clock: Callable[[], float] = time.monotonic,
        state: RolloutState | None = None,
        events: list[dict[str, Any]] | None = None,
    ):
        """``state`` and ``events``: a rollout resumed from storage instead of started from config."""
        self.policy = policy
        self.clock = clock
        self.state = state or RolloutState.initial(models, policy)
        self.window: dict[str, VersionFigures] = {}
        self.last_window: dict[str, VersionFigures] = {}
        self.totals: dict[str, VersionFigures] = {}
        self.window_started = clock()
        self.events: list[dict[str, Any]] = list(events or [])

    # -- figures -------------------------------------------------------------------
    def record(self, figures: dict[str, VersionFigures]) -> None:
        for version, figure in figures.items():
            self.window.setdefault(version, VersionFigures()).merge(figure)
            self.totals.setdefault(version, VersionFigures()).merge(figure)
        if self.clock() - self.window_started >= self.policy.window_s:
            self.close_window()

    def close_window(self) -> None:
        canary = self.state.canary
        if canary is not None and self.state.canary_weight > 0:
            self._evaluate(canary, self.window.get(canary, VersionFigures()))
        self.last_window = self.window
        self.window = {}
        self.window_started = self.clock()

    def _evaluate(self, canary: str, figures: VersionFigures) -> None:
        if figures.requests < self.policy.min_requests:
            return
        self.state.windows_judged += 1
        breach = self._breach(figures, self.window.get(self.state.stable, VersionFigures()))
        if breach is not None:
            self._roll_back(breach)
            return
        self.state.healthy_windows += 1
        needed = self.policy.promote_after_windows
        if needed is not None and self.state.healthy_windows >= needed:
            self._step_up()

    def _breach(self, canary: VersionFigures, stable: VersionFigures) -> str | None:
        """The first rule a window of the canary breaks, as a reason; None if healthy."""
        policy = self.policy
        p99 = canary.percentile_ms(0.99) or 0.0
        if canary.error_rate > policy.max_error_rate:
            return f"error rate {canary.error_rate:.3f} > {policy.max_error_rate}"
        if policy.max_p99_ms is not None and p99 > policy.max_p99_ms:
            return f"p99 {p99:.1f} ms > {policy.max_p99_ms} ms"
        if stable.requests < policy.min_requests:
            return None  # nothing to compare against in this window
        stable_p99 = stable.percentile_ms(0.99) or 0.0
        if canary.error_rate > stable.error_rate + policy.max_error_rate_margin:
            return (f"error rate {canary.error_rate:.3f} > stable's {stable.error_rate:.3f} "
                    f"+ {policy.max_error_rate_margin}")
        if p99 > stable_p99 * policy.max_p99_ratio and p99 - stable_p99 >= policy.min_p99_excess_ms:
            return f"p99 {p99:.1f} ms > stable's {stable_p99:.1f} ms x {policy.max_p99_ratio}"
        return None

    def next_step(self) -> float:
        """The canary's share after its next step: the first of ``promotion_steps`` above its share."""
        return next((step for step in self.policy.promotion_steps if step > self.state.canary_weight), 1.0)

    def _step_up(self) -> None:
        share = self.next_step()
        if share >= 1.0:
            self._promote()
            return
        state = self.state
        state.steps_taken += 1
        reason = (f"{state.canary} stepped from {state.canary_weight:g} to {share:g} after "
                  f"{state.healthy_windows} healthy windows")
        state.canary_weight = share
        state.healthy_windows = 0
        state.reason = reason
        state.generation += 1
        self.note(reason)

    def _roll_back(self, reason: str) -> None:
        self._transition("rolled_back", f"{self.state.canary} rolled back: {reason}", stable=self.state.stable)

    def _promote(self) -> None:
        assert self.state.canary is not None
        reason = (f"{self.state.canary} promoted after {self.state.healthy_windows} healthy windows at share "
                  f"{self.state.canary_weight:g} ({self.state.steps_taken} steps before)")
        self._transition("promoted", reason, stable=self.state.canary)

    def note(self, reason: str) -> None:
        """An event that changes nothing (shown in ``view()``)."""
        self.events.append({"status": self.state.status, "reason": reason, "at": time.time()})

    def withhold_canary(self, reason: str) -> None:
        """All traffic to stable, for when the canary's fate is unknown (a lost state may have rolled it back)."""
        self._transition("stable", reason, stable=self.state.stable)

    def _transition(self, status: Status, reason: str, stable: str) -> None:
        self.state.stable = stable
        self.state.canary = None
        self.state.canary_weight = 0.0
        self.state.status = status
        self.state.reason = reason
        self.state.healthy_windows = 0  # steps_taken and windows_judged stay: how far the canary got
        self.state.generation += 1
        self.note(reason)

    # -- runtime changes -----------------------------------------------------------
    def update(self, change: RolloutUpdate) -> RolloutState:
        """Apply a change or raise ValueError naming the bad field; nothing changes on error."""
        versions = {**self.state.versions, **(change.versions or {})}
        stable = change.stable or self.state.stable
        canary = None if change.clear_canary else (change.canary or self.state.canary)
        weight = self.state.canary_weight if change.canary_weight is None else change.canary_weight
        if stable not in versions:
            raise ValueError(f"stable: unknown version {stable!r} (known: {sorted(versions)})")
        if canary is not None and canary not in versions:
            raise ValueError(f"canary: unknown version {canary!r} (known: {sorted(versions)})")
        if canary is not None and canary == stable:
            raise ValueError(f"canary: {canary!r} is the stable version")
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"canary_weight: expected a fraction in [0, 1], got {weight}")
        new_canary = canary != self.state.canary
        self.state.versions = versions
        self.state.stable = stable
        self.state.canary = canary
        self.state.canary_weight = weight if canary is not None else 0.0
        if new_canary or change.canary_weight is not None:
            # A new canary, or a share set by hand: the streak at the old share no longer counts.
            self.state.healthy_windows = 0
        if new_canary:
            self.state.steps_taken = 0
            self.state.windows_judged = 0
            self.window = {}
            self.window_started = self.clock()
        self.state.status = "canary" if canary is not None and weight > 0 else "stable"
        self.state.reason = "updated at runtime"
        self.state.generation += 1
        return self.state

    def view(self) -> dict[str, Any]:
        versions = sorted(set(self.totals) | set(self.window) | set(self.last_window))
        return {
            **self.state.to_wire(),
            "policy": self.policy.model_dump(),
            "events": self.events[-20:],
            "figures": {
                version: {
                    "current_window": self.window.get(version, VersionFigures()).summary(),
                    "last_window": self.last_window.get(version, VersionFigures()).summary(),
                    "total": self.totals.get(version, VersionFigures()).summary(),
                }
                for version in versions
            },
        }
