"""The rollout controller: one replica holding the rollout state for all ingress replicas."""

from __future__ import annotations

import logging
from typing import Any

from mlray.config.inference import InferenceConfig
from mlray.serve.canary import Rollout, RolloutUpdate, VersionFigures
from mlray.serve.metrics import RolloutMetrics

log = logging.getLogger(__name__)


class RolloutController:
    """Serve deployment (one replica, no CPU). ``user_config`` = ``{"models": ..., "rollout": ...}``
    of configs/inference.yaml, so ``serve deploy`` with a new canary applies in place."""

    def __init__(self, config: dict[str, Any]):
        self.config = InferenceConfig.model_validate(config)
        self.metrics = RolloutMetrics(self.config.monitoring.enable_metrics)
        self.rollout = Rollout(self.config.models, self.config.rollout)
        self.metrics.publish(self.rollout.state)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        changed = self.config.model_copy(update={})
        if "models" in user_config:
            changed.models = self.config.models.model_validate(user_config["models"])
        if "rollout" in user_config:
            changed.rollout = self.config.rollout.model_validate(user_config["rollout"])
        # Re-validate across sections (canary must be a known version), then start over.
        self.config = InferenceConfig.model_validate(changed.model_dump())
        self.rollout = Rollout(self.config.models, self.config.rollout)
        self.metrics.publish(self.rollout.state)
        log.info("rollout reconfigured: %s", self.rollout.state)

    def report(self, figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
        before = self.rollout.state.status
        self.rollout.record({v: VersionFigures.from_wire(f) for v, f in figures.items()})
        if self.rollout.state.status != before:
            log.warning("rollout: %s", self.rollout.state.reason)
        self.metrics.publish(self.rollout.state)
        return self.rollout.state.to_wire()

    def update(self, change: dict[str, Any]) -> dict[str, Any]:
        """Raises ValueError naming the bad field; the ingress answers 422."""
        state = self.rollout.update(RolloutUpdate(**change))
        self.metrics.publish(state)
        log.info("rollout updated: %s", state)
        return state.to_wire()

    def view(self) -> dict[str, Any]:
        return self.rollout.view()
