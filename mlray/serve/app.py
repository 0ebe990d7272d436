"""An ``InferenceConfig`` as a Ray Serve application: ingress deployment plus rollout controller.

What can change without restarting replicas goes in ``user_config``:
batching (``service.batch_size``, ``service.batch_wait_timeout_s``) for the
ingress, ``models`` and ``rollout`` for the controller. ``serve deploy`` with
only those changed reconfigures in place; ``PUT /v1/rollout`` changes the
rollout without any deploy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application

from mlray.config.inference import InferenceConfig
from mlray.serve.prediction.service import BatchedPredictionService, SyncPredictionService
from mlray.serve.rollout.controller import RolloutController

INGRESS_NAME = "PredictionService"
CONTROLLER_NAME = "RolloutController"
# Replica fields that reconfigure() applies in place; kept out of the init args so changing them restarts nothing.
INGRESS_RUNTIME_FIELDS = ("batch_size", "batch_wait_timeout_s")


def resolve_local_paths(config: InferenceConfig, root: Path) -> InferenceConfig:
    """Relative local paths against ``root`` (the project), not the replica's working directory."""

    def absolute(path: str | None) -> str | None:
        if path is None or "://" in path or path.startswith("models:/") or os.path.isabs(path):
            return path
        return str(root / path)

    data = config.model_dump()
    data["storage"]["uri"] = absolute(config.storage.uri)
    data["prediction_log"]["sink"] = absolute(config.prediction_log.sink)
    data["auth"]["api_keys_file"] = absolute(config.auth.api_keys_file)
    data["auth"]["admin_keys_file"] = absolute(config.auth.admin_keys_file)
    mlflow_uri = config.mlflow.tracking_uri
    if mlflow_uri.startswith("sqlite:///") and not mlflow_uri.startswith("sqlite:////"):
        data["mlflow"]["tracking_uri"] = f"sqlite:///{root / mlflow_uri[len('sqlite:///'):]}"
    return InferenceConfig.model_validate(data)


def ingress_init_config(config: InferenceConfig) -> dict[str, Any]:
    """The ingress's init args: everything except what user_configs carry."""
    data = config.model_dump()
    for name in INGRESS_RUNTIME_FIELDS:
        data["service"].pop(name)
    data["rollout"].update(canary=None, canary_weight=0.0)
    return data


def autoscaling_options(config: InferenceConfig) -> dict[str, Any]:
    service = config.service
    if service.min_workers == service.max_workers:
        return {"num_replicas": service.min_workers}
    return {
        "autoscaling_config": {
            "min_replicas": service.min_workers,
            "max_replicas": service.max_workers,
            "target_ongoing_requests": service.target_ongoing_requests,
        }
    }


def build_application(config: InferenceConfig, root: Path | None = None) -> Application:
    if root is not None:
        config = resolve_local_paths(config, root)
    service = config.service
    controller = serve.deployment(RolloutController).options(
        name=CONTROLLER_NAME,
        num_replicas=1,
        ray_actor_options={"num_cpus": 0},
        logging_config={"enable_access_log": False},  # two reports a second per replica
        user_config={"models": config.models.model_dump(), "rollout": config.rollout.model_dump()},
    )
    ingress_cls = BatchedPredictionService if service.mode == "batched" else SyncPredictionService
    ingress = serve.deployment(ingress_cls).options(
        name=INGRESS_NAME,
        max_ongoing_requests=service.max_ongoing_requests,
        ray_actor_options={"num_cpus": service.num_cpus},
        health_check_period_s=service.health_check_period_s,
        health_check_timeout_s=service.health_check_timeout_s,
        logging_config={"enable_access_log": service.access_log},
        user_config={name: getattr(service, name) for name in INGRESS_RUNTIME_FIELDS},
        **autoscaling_options(config),
    )
    return ingress.bind(ingress_init_config(config), controller.bind(config.model_dump()))
