"""The numbers the manifests take from the job configs, for the jobs that run on a cluster.

The jobs are those of the jobs table (``mlray.config.jobs``). Each RayJob's deadline and each spot
group's grace period are read from the job's own config with ``load_config``, the same way
``python -m jobs.X`` reads them, so the manifests cannot drift from the local runs. A config file that
does not exist yet falls back to its model's defaults, and a config without a timeouts or spot section
to the shared section defaults (``TimeoutsConfig``, ``SpotConfig``); when one lands, a fresh render
differs from the committed one and the drift test says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlray.config.base import ConfigModel
from mlray.config.loader import load_config
from mlray.config.jobs import Job, cluster_jobs
from mlray.config.registry import config_files
from mlray.config.sections import SpotConfig, TimeoutsConfig


@dataclass(frozen=True)
class JobSettings:
    """What a RayJob manifest needs from a job config, and where each value came from."""

    job: Job
    total_runtime: float | None
    grace_period: float
    has_storage: bool
    has_mlflow: bool
    source: str  # human-readable provenance, written into the manifest as a comment

    def deadline_seconds(self, margin: int) -> int | None:
        """``activeDeadlineSeconds``: the job's total runtime plus start-up margin; None = no limit."""
        if self.total_runtime is None:
            return None
        return math.ceil(self.total_runtime) + margin


def load_job_config(job: Job, configs_dir: Path, overrides: Iterable[str] = ()) -> tuple[ConfigModel, str]:
    """The config the job's RayJob runs with (file, or model defaults, then ``--set`` ``overrides``) and where
    it came from."""
    path = configs_dir / job.rayjob_config_file
    if not path.is_file():
        defaults = load_config(job.config, None, overrides, environ={})
        return defaults, f"{job.config.__name__} defaults (no configs/{path.name})"
    return load_config(job.config, path, overrides, environ={}), f"configs/{job.rayjob_config_file}"


def job_settings(job: Job, configs_dir: Path) -> JobSettings:
    config, source = load_job_config(job, configs_dir)
    timeouts = getattr(config, "timeouts", None)
    spot = getattr(config, "spot", None)
    if timeouts is None:
        source += " (no timeouts section: TimeoutsConfig defaults)"
    timeouts = timeouts if isinstance(timeouts, TimeoutsConfig) else TimeoutsConfig()
    spot = spot if isinstance(spot, SpotConfig) else SpotConfig()
    fields = type(config).model_fields
    return JobSettings(
        job=job,
        total_runtime=timeouts.total_runtime,
        grace_period=spot.grace_period,
        has_storage="storage" in fields,
        has_mlflow="mlflow" in fields,
        source=source,
    )


def all_job_settings(configs_dir: Path) -> list[JobSettings]:
    return [job_settings(job, configs_dir) for job in cluster_jobs()]


def checkpoint_grace_seconds(configs_dir: Path) -> float:
    """The longest spot checkpoint grace any job asks for: what shared spot groups must allow."""
    return max(settings.grace_period for settings in all_job_settings(configs_dir))


SERVE_CONFIG_FILE = "inference.yaml"


@dataclass(frozen=True)
class ServeSettings:
    """What the RayService pods need from the serving config (configs/inference.yaml)."""

    key_files: dict[str, str]  # Secret name (before the prefix) -> file the app reads its keys from
    sections: frozenset[str]  # top-level sections, for MLRAY_<SECTION>__<FIELD> env overrides


def serve_settings(configs_dir: Path) -> ServeSettings:
    model_cls = config_files().get(SERVE_CONFIG_FILE)
    if model_cls is None:
        return ServeSettings(key_files={}, sections=frozenset())
    path = configs_dir / SERVE_CONFIG_FILE
    config = load_config(model_cls, path if path.is_file() else None, environ={})
    auth = getattr(config, "auth", None)
    return ServeSettings(
        key_files={
            secret: path
            for secret, path in (
                ("serve-api-keys", getattr(auth, "api_keys_file", None)),
                ("serve-admin-keys", getattr(auth, "admin_keys_file", None)),
            )
            if path
        },
        sections=frozenset(type(config).model_fields),
    )
