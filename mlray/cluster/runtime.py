"""Connecting a driver to Ray with the environment its workers need."""

from __future__ import annotations

import json
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


# Set by Ray's job manager for a submitted job's driver: the job's config, with its runtime env.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def worker_env_vars() -> dict[str, str]:
    return {name: os.environ[name] for name in PROPAGATED_ENV_VARS if name in os.environ}


def job_runtime_env_vars() -> dict[str, str]:
    """The env vars of the submitted job's runtime env (``ray job submit --runtime-env-json``, a RayJob's
    runtimeEnvYAML): Ray already gives them to every worker of the job, and refuses a ``ray.init`` that
    names any of them again."""
    raw = os.environ.get(JOB_CONFIG_ENV)
    if not raw:
        return {}
    return dict((json.loads(raw).get("runtime_env") or {}).get("env_vars") or {})


def without_job_env_vars(env_vars: dict[str, str]) -> dict[str, str]:
    """``env_vars`` less those the submitted job's runtime env sets (its values reach the workers)."""
    already = job_runtime_env_vars()
    return {name: value for name, value in env_vars.items() if name not in already}


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
        "runtime_env": {"env_vars": without_job_env_vars(worker_env_vars())},
        "log_to_driver": True,
    }
    starts_local = config.address is None and not os.environ.get("RAY_ADDRESS")
    if starts_local and config.num_cpus is not None:
        init_kwargs["num_cpus"] = config.num_cpus
    init_kwargs.update(kwargs)
    ray.init(**init_kwargs)
    log.info("ray: %s", ray.get_runtime_context().gcs_address)
