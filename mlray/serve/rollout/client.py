"""A replica's side of the rollout: local routing state, figures, periodic sync.

Each ingress replica routes from its local copy of the rollout state, so the
request path never waits on the controller. Every ``report_interval_s`` it
sends the figures gathered since the last report and gets the current state
back, so a weight change or a rollback reaches all replicas within one interval.
A replica's own starting state is version (0, 0); the controller's are above it.
"""

from __future__ import annotations

import threading
from typing import Any

from mlray.serve.rollout.canary import RolloutState, choose_version
from mlray.serve.rollout.figures import VersionFigures

SYNC_TIMEOUT_S = 10.0


class RolloutClient:
    def __init__(self, controller: Any, initial: RolloutState):
        self.controller = controller  # DeploymentHandle of RolloutController
        self._state = initial
        self._figures: dict[str, VersionFigures] = {}
        self._lock = threading.Lock()

    @property
    def state(self) -> RolloutState:
        return self._state

    def choose(self, key: str | None) -> str:
        return choose_version(self._state, key)

    def record(self, version: str, ok: bool, latency_ms: float) -> None:
        with self._lock:
            self._figures.setdefault(version, VersionFigures()).record(ok, latency_ms)

    def adopt(self, wire: dict[str, Any]) -> RolloutState:
        """Take the state if its (epoch, generation) is newer than the one held; returns the one held.

        Answers can arrive out of order (a PUT's answer and a report's), and a controller
        that Serve replaced may still answer once: neither may set a replica back.
        """
        state = RolloutState.from_wire(wire)
        if state.version > self._state.version:
            self._state = state
        return self._state

    def sync(self) -> None:
        """Report figures, adopt the controller's state (runs on the ticker thread)."""
        with self._lock:
            figures, self._figures = self._figures, {}
        wire = {version: figure.to_wire() for version, figure in figures.items()}
        try:
            self.adopt(self.controller.report.remote(wire).result(timeout_s=SYNC_TIMEOUT_S))
        except Exception:
            # Keep the figures for the next round rather than lose a failing canary's errors.
            with self._lock:
                for version, figure in figures.items():
                    self._figures.setdefault(version, VersionFigures()).merge(figure)
            raise
