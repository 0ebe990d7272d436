"""The platform's batch jobs and the numbers their manifests take from the job configs.

Each RayJob's deadline and each spot group's grace period are read from the
job's own config through ``mlray.config.registry`` and ``load_config``, the
same way ``python -m jobs.X`` reads them, so the manifests cannot drift from
the local runs. A config file or section that does not exist yet falls back to
the shared section defaults (``TimeoutsConfig``, ``SpotConfig``); when it lands,
a fresh render differs from the committed one and the drift test says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mlray.config.base import ConfigModel
from mlray.config.loader import load_config
from mlray.config.registry import CONFIG_FILES
from mlray.config.sections import SpotConfig, TimeoutsConfig


@dataclass(frozen=True)
class JobWorkload:
    """One ``python -m jobs.<module_name> --config configs/<config_file>`` entrypoint."""

    command: str  # the image's subcommand and the Kubernetes name suffix: "batch-predict"
    config_file: str

    @property
    def module(self) -> str:
        return f"jobs.{self.command.replace('-', '_')}"


JOBS: tuple[JobWorkload, ...] = (
    JobWorkload("train", "training.yaml"),
    JobWorkload("tune", "tune.yaml"),
    JobWorkload("optimize", "or_tools.yaml"),
    JobWorkload("preprocess", "preprocessing.yaml"),
    JobWorkload("batch-predict", "batch_inference.yaml"),
    # On GKE the feature store is the GCP one (BigQuery, Datastore, registry in GCS): the local
    # configs/features.yaml (files + SQLite) would materialize into a pod that is deleted afterwards.
    JobWorkload("materialize", "features.gcp.yaml"),
)


@dataclass(frozen=True)
class JobSettings:
    """What a RayJob manifest needs from a job config, and where each value came from."""

    workload: JobWorkload
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


def load_job_config(
    workload: JobWorkload, configs_dir: Path, overrides: Iterable[str] = ()
) -> tuple[ConfigModel | None, str]:
    """The job's validated config (file, or model defaults, then ``--set`` ``overrides``), or None when no
    model is registered yet."""
    model_cls = CONFIG_FILES.get(workload.config_file)
    path = configs_dir / workload.config_file
    if model_cls is None:
        return None, f"shared defaults (configs/{workload.config_file} has no registered model yet)"
    if not path.is_file():
        return load_config(
            model_cls, None, overrides, environ={}
        ), f"{model_cls.__name__} defaults (no configs/{path.name})"
    return load_config(model_cls, path, overrides, environ={}), f"configs/{workload.config_file}"


def job_settings(workload: JobWorkload, configs_dir: Path) -> JobSettings:
    config, source = load_job_config(workload, configs_dir)
    timeouts = getattr(config, "timeouts", None)
    spot = getattr(config, "spot", None)
    if config is not None and timeouts is None:
        source += " (no timeouts section: TimeoutsConfig defaults)"
    timeouts = timeouts if isinstance(timeouts, TimeoutsConfig) else TimeoutsConfig()
    spot = spot if isinstance(spot, SpotConfig) else SpotConfig()
    fields = type(config).model_fields if config is not None else {}
    return JobSettings(
        workload=workload,
        total_runtime=timeouts.total_runtime,
        grace_period=spot.grace_period,
        # An unregistered config is assumed to follow the house layout (storage section).
        has_storage=config is None or "storage" in fields,
        has_mlflow="mlflow" in fields,
        source=source,
    )


def all_job_settings(configs_dir: Path) -> list[JobSettings]:
    return [job_settings(workload, configs_dir) for workload in JOBS]


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
    model_cls = CONFIG_FILES.get(SERVE_CONFIG_FILE)
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
