"""Every environment variable the platform sets for a process, derived from the job's config, in one place.

Ray, Ray Train, Ray Serve, gcsfs, Feast and MLflow read some settings only from the environment.
``process_env(job, config)`` returns all of them for one job's process; everything that starts or
describes such a process uses it:

* ``mlray.entrypoint.run_job`` (every ``python -m jobs.X``) applies it when the job starts, and
  ``mlray.train.runner`` again before its trainer starts (for callers of ``run_training`` itself);
* ``mlray.cluster.init_ray`` applies it (the platform part by default) before ``ray.init``, and gives the
  workers the same values;
* ``mlray.kuberay`` renders it into the Ray containers and each RayJob's runtime env, from that job's
  config with its entrypoint's ``--set`` overrides;
* ``make serve`` and the Makefile's exports print it (``python -m mlray.process_env [JOB]``);
* the demo's local services apply it before they start Ray.

Precedence, one rule: **the config value wins**. ``apply`` overwrites a variable of the same name that
is already in the environment, so a variable set by hand never silently beats the config (before, a
hard-coded ``RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S`` did). ``PLATFORM_ENV`` is no config value: its
entries are defaults that a variable set by hand keeps. To set one of these values from the
environment, set the config field there: ``MLRAY_<SECTION>__<FIELD>`` (``mlray.config.loader``), e.g.
``MLRAY_SPOT__DRAIN_POLL_INTERVAL_S=5``.

Nothing here writes ``os.environ`` on import, and this module imports neither Ray nor pydantic (the
Makefile runs it on every ``make``); it sits with ``mlray.config`` and ``mlray.storage`` at the bottom
of the layers (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

# Every process of the platform, whatever its job.
PLATFORM_ENV: dict[str, str] = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "FEAST_USAGE": "False",
    # gcsfs >= 2026 probes every bucket over gRPC for hierarchical namespaces and stalls 60 s per bucket
    # against an emulator; the probe buys nothing here. gcsfs reads it when it is imported.
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
}

# Not derived from a config but set by whoever starts the driver (an emulator, `make cluster-up`, GKE):
# a driver passes them on to the Ray workers it starts, with PLATFORM_ENV.
PASSED_THROUGH = ("STORAGE_EMULATOR_HOST", "MLFLOW_TRACKING_URI", "GOOGLE_CLOUD_PROJECT")

TRAIN_JOB = "train"
SERVE_JOB = "serve"


def ray_train_env(config: Any) -> dict[str, str]:
    """Ray Train's settings that exist only as environment variables (the trainer reads them from the
    driver's environment and hands them to its controller), from a ``TrainJobConfig``."""
    return {
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": str(config.training.health_check_interval_s),
        "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": str(config.spot.drain_poll_interval_s),
        "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": str(config.training.worker_group_start_timeout_s),
    }


def mlflow_env(config: Any) -> dict[str, str]:
    """``MLFLOW_TRACKING_URI`` from a config's ``mlflow.tracking_uri``, when it has one."""
    uri = getattr(getattr(config, "mlflow", None), "tracking_uri", None)
    return {"MLFLOW_TRACKING_URI": uri} if uri else {}


def process_env(job: str, config: Any = None) -> dict[str, str]:
    """Every environment variable the platform sets for ``job``'s process, from ``config``.

    ``job`` is the job's name (``train``, ``tune``, ``batch-predict``, ... or ``serve``; ``_`` and ``-``
    alike). Every job gets ``PLATFORM_ENV``; ``train`` adds Ray Train's settings from its
    ``TrainJobConfig``; ``serve`` adds Ray Serve's cluster settings (``mlray.serve.cluster_env``) and
    MLflow's tracking URI from its ``InferenceConfig``. With ``config=None`` the parts that need a config
    are left out.
    """
    name = job.replace("_", "-")
    env = dict(PLATFORM_ENV)
    if name == TRAIN_JOB and config is not None:
        env.update(ray_train_env(config))
    elif name == SERVE_JOB:
        # A light module (stdlib only); imported here so that this one stays below the workloads.
        from mlray.serve.cluster_env import SERVING_ENV

        env.update(SERVING_ENV)
        if config is not None:
            env.update(mlflow_env(config))
    return env


def apply(env: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Write ``env`` into ``environ`` (this process's ``os.environ`` by default): a value derived from the
    config wins, so a variable already there with another value is replaced. ``PLATFORM_ENV``'s values
    come from no config: they are defaults, and one set by hand stays (usage stats on, or gcsfs's
    namespace probe for a real hierarchical bucket). Returns what was replaced (name -> old value), for a
    log line or a test."""
    target = os.environ if environ is None else environ
    wins = {name: value for name, value in env.items() if name not in PLATFORM_ENV or name not in target}
    replaced = {name: target[name] for name, value in wins.items() if name in target and target[name] != value}
    target.update(wins)
    return replaced


def passed_through(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``PASSED_THROUGH`` and ``PLATFORM_ENV`` variables of ``environ`` (``os.environ``): what a driver
    gives the Ray workers it starts."""
    source = os.environ if environ is None else environ
    return {name: source[name] for name in (*PASSED_THROUGH, *PLATFORM_ENV) if name in source}


def main(argv: Sequence[str] | None = None) -> None:
    """Print ``process_env(job, config)`` as ``KEY=VALUE`` words, for ``env $(...)`` or make's ``export``."""
    parser = argparse.ArgumentParser(prog="python -m mlray.process_env", description=main.__doc__)
    parser.add_argument("job", nargs="?", default="", help="job name (train, serve, ...); none: PLATFORM_ENV")
    parser.add_argument("--config", help="the job's YAML config (its model from mlray.config.registry)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="dotted.key=value")
    args = parser.parse_args(argv)
    config = None
    if args.config:
        from mlray.config.loader import load_config
        from mlray.config.registry import model_for_file

        config = load_config(model_for_file(os.path.basename(args.config)), args.config, args.overrides)
    env = process_env(args.job, config)
    bad = [name for name, value in env.items() if not value or any(c.isspace() for c in value)]
    if bad:
        sys.exit(f"cannot print {', '.join(bad)} as KEY=VALUE words (empty or with spaces)")
    print(" ".join(f"{name}={value}" for name, value in env.items()))


if __name__ == "__main__":
    main()
