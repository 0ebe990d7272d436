"""The rollout controller: one replica holding the rollout state for all ingress replicas.

The state lives in storage too (``mlray.serve.rollout.store``). Serve replaces a
dead controller replica itself (it refuses ``max_restarts`` in
``ray_actor_options`` and recreates replicas instead); the new one claims a
higher epoch and carries on from the last persisted state, so a rolled-back
canary stays rolled back and replicas, which only adopt newer states, follow it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any

from mlray.config.inference import InferenceConfig
from mlray.metrics.serve import RolloutMetrics
from mlray.serve.rollout.canary import Rollout, RolloutState, RolloutUpdate
from mlray.serve.rollout.figures import VersionFigures
from mlray.serve.rollout.store import Recovery, RolloutStore, StateRecord

log = logging.getLogger(__name__)
EVENTS_KEPT = 20  # as many as view() shows


def config_digest(config: InferenceConfig) -> str:
    """Identity of the config a rollout starts from: a redeploy with the same one continues the rollout."""
    sections = {name: getattr(config, name).model_dump(mode="json") for name in ("models", "rollout")}
    return hashlib.sha256(json.dumps(sections, sort_keys=True).encode()).hexdigest()[:16]


def deployment_identity(config: InferenceConfig) -> tuple[str, str | None]:
    """Serve application name and code version (each ``serve run`` gets a new one; a replica restart keeps it)."""
    try:
        from ray import serve

        context = serve.get_replica_context()
        return context.app_name, context.code_version
    except Exception:  # noqa: BLE001 - outside a Serve replica (unit tests, tools)
        return config.app_name, None


class RolloutController:
    """Serve deployment (one replica, no CPU). ``user_config`` = ``{"models": ..., "rollout": ...}``
    of configs/inference.yaml, so ``serve deploy`` with a new canary applies in place."""

    def __init__(self, config: dict[str, Any]):
        # Serve runs sync methods in a thread pool: reports from several replicas arrive at once.
        self._lock = threading.RLock()
        self.config = InferenceConfig.model_validate(config)
        self.metrics = RolloutMetrics(self.config.monitoring.enable_metrics)
        app, self.code_version = deployment_identity(self.config)
        self.store = RolloutStore(self.config.storage.uri, app)
        self.rollout, self.config_digest = self._starting_rollout(self.store.recover())
        self.persisted: str | None = None
        self.persisted_uri: str | None = None
        # Claiming the epoch must reach storage, or a later incarnation could claim it again.
        self._persist(raise_errors=True)
        self.metrics.publish(self.rollout.state)
        log.info("rollout started at epoch %s: %s", self.rollout.state.epoch, self.rollout.state)

    def _starting_rollout(self, recovery: Recovery) -> tuple[Rollout, str]:
        """This deployment's persisted rollout if there is one, else the config's; at a fresh epoch."""
        record = recovery.record
        ours = record is not None and record.code_version == self.code_version
        if ours and record is not None:
            rollout = self._rollout(record.state, record.events)
            digest = record.config_digest
        else:
            rollout, digest = self._rollout(), config_digest(self.config)
        state = rollout.state
        state.epoch = recovery.highest_epoch + 1
        state.generation = max(state.generation, recovery.highest_generation)
        if not ours:
            state.generation += 1
        if recovery.unreadable_newer:
            note = f"newer rollout state unreadable, ignored: {', '.join(recovery.unreadable_newer)}"
            if state.canary is not None:
                # The lost state may have rolled the canary back: none runs until someone sets it again.
                rollout.withhold_canary(f"canary withheld: {note}")
            else:
                rollout.note(note)
        return rollout, digest

    def _rollout(self, state: RolloutState | None = None, events: list[dict[str, Any]] | None = None) -> Rollout:
        return Rollout(self.config.models, self.config.rollout, state=state, events=events)

    def _persist(self, raise_errors: bool = False) -> None:
        """Write the state if it changed; a failure is logged and retried at the next change or report."""
        rollout = self.rollout
        record = StateRecord(rollout.state, self.config_digest, self.code_version, rollout.events[-EVENTS_KEPT:])
        text = record.to_json()
        if text == self.persisted:
            return
        try:
            self.persisted_uri = self.store.save(record)
        except Exception:  # noqa: BLE001 - storage trouble must not stop routing
            if raise_errors:
                raise
            log.exception("rollout state %s not persisted; serving it from memory", rollout.state.version)
            return
        self.persisted = text

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        with self._lock:
            self._reconfigure(user_config)

    def _reconfigure(self, user_config: dict[str, Any]) -> None:
        changed = self.config.model_copy(update={})
        if "models" in user_config:
            changed.models = self.config.models.model_validate(user_config["models"])
        if "rollout" in user_config:
            changed.rollout = self.config.rollout.model_validate(user_config["rollout"])
        # Re-validate across sections (canary must be a known version).
        self.config = InferenceConfig.model_validate(changed.model_dump())
        digest = config_digest(self.config)
        if digest == self.config_digest:
            # A restart or a redeploy of the same rollout: carry on, never back to the config's canary.
            log.info("rollout config unchanged; continuing at %s", self.rollout.state.version)
            return
        previous = self.rollout.state
        self.rollout, self.config_digest = self._rollout(), digest
        self.rollout.state.epoch = previous.epoch
        self.rollout.state.generation = previous.generation + 1
        self._persist()
        self.metrics.publish(self.rollout.state)
        log.info("rollout reconfigured: %s", self.rollout.state)

    def report(self, figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
        received = {v: VersionFigures.from_wire(f) for v, f in figures.items()}
        with self._lock:
            before = self.rollout.state.status
            self.rollout.record(received)
            if self.rollout.state.status != before:
                log.warning("rollout: %s", self.rollout.state.reason)
            self._persist()
            self.metrics.publish(self.rollout.state)
            return self.rollout.state.to_wire()

    def update(self, change: dict[str, Any]) -> dict[str, Any]:
        """Raises ValueError naming the bad field; the ingress answers 422."""
        with self._lock:
            state = self.rollout.update(RolloutUpdate(**change))
            self._persist()
            self.metrics.publish(state)
            log.info("rollout updated: %s", state)
            return state.to_wire()

    def view(self) -> dict[str, Any]:
        with self._lock:
            return {**self.rollout.view(), "state_uri": self.persisted_uri}
