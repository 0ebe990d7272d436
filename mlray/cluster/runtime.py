"""Connecting a driver to Ray with the environment its workers need."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import ray

from mlray.config.sections import RayConfig
from mlray.process_env import PASSED_THROUGH, PLATFORM_ENV, apply, passed_through

log = logging.getLogger(__name__)

# Variables a driver's workers must see too: storage endpoints, MLflow, the platform's settings
# (mlray.process_env).
PROPAGATED_ENV_VARS = (*PASSED_THROUGH, *PLATFORM_ENV)


# Set by Ray's job manager for a submitted job's driver: the job's config, with its runtime env.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def worker_env_vars() -> dict[str, str]:
    return passed_through(os.environ)


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


def init_ray(config: RayConfig | None = None, env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
    """Join the configured cluster, the one ``ray job submit`` runs us in, or start one.

    ``address: null`` lets Ray decide: inside ``ray job submit`` (RAY_ADDRESS set)
    it joins that cluster, otherwise it starts a local one.

    ``env``: the job's ``mlray.process_env.process_env(job, config)``, applied to this process first (the
    config value wins); default: the platform's part (``PLATFORM_ENV``). The workers get it too.
    """
    if ray.is_initialized():
        return
    config = config or RayConfig()
    env = PLATFORM_ENV if env is None else env
    apply(env)
    init_kwargs: dict[str, Any] = {
        "address": config.address,
        "runtime_env": {"env_vars": without_job_env_vars({**worker_env_vars(), **env})},
        "log_to_driver": True,
    }
    starts_local = config.address is None and not os.environ.get("RAY_ADDRESS")
    if starts_local and config.num_cpus is not None:
        init_kwargs["num_cpus"] = config.num_cpus
    init_kwargs.update(kwargs)
    ray.init(**init_kwargs)
    log.info("ray: %s", ray.get_runtime_context().gcs_address)
