"""Connecting a driver to Ray with the environment its workers need."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

from mlray.config.sections import RayConfig

log = logging.getLogger(__name__)

# Variables a driver's workers must see too: storage endpoints and flags, MLflow.
PROPAGATED_ENV_VARS = (
    "STORAGE_EMULATOR_HOST",
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT",
    "MLFLOW_TRACKING_URI",
    "GOOGLE_CLOUD_PROJECT",
    "FEAST_USAGE",
)


def worker_env_vars() -> dict[str, str]:
    return {name: os.environ[name] for name in PROPAGATED_ENV_VARS if name in os.environ}


def init_ray(config: RayConfig | None = None, **kwargs: Any) -> None:
    """Join the configured cluster, the one ``ray job submit`` runs us in, or start one.

    ``address: null`` lets Ray decide: inside ``ray job submit`` (RAY_ADDRESS set)
    it joins that cluster, otherwise it starts a local one.
    """
    if ray.is_initialized():
        return
    config = config or RayConfig()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    init_kwargs: dict[str, Any] = {
        "address": config.address,
        "runtime_env": {"env_vars": worker_env_vars()},
        "log_to_driver": True,
    }
    starts_local = config.address is None and not os.environ.get("RAY_ADDRESS")
    if starts_local and config.num_cpus is not None:
        init_kwargs["num_cpus"] = config.num_cpus
    init_kwargs.update(kwargs)
    ray.init(**init_kwargs)
    log.info("ray: %s", ray.get_runtime_context().gcs_address)
