"""Config sections that several config files share.

Defaults live here and only here; YAML files in ``configs/`` may restate them
for readability, but code never repeats them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from mlray.config.base import ConfigModel, NonNegativeFloat, PositiveFloat, PositiveInt, RunName
from mlray.storage.locations import check_location, check_model_location, local_root, resolve_location

STORAGE_URI_EXPECTED = "expected a local path or gs://bucket/prefix"
GCS_BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")


def gcs_bucket_problem(bucket: str) -> str | None:
    """What breaks GCS's bucket naming rules in ``bucket``, or None."""
    if not GCS_BUCKET_PATTERN.fullmatch(bucket):
        return "use lower-case letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    limit = 222 if "." in bucket else 63
    if not 3 <= len(bucket) <= limit or any(len(part) > 63 for part in bucket.split(".")):
        return "use 3-63 characters, or up to 222 with dots and at most 63 between them"
    try:
        ipaddress.IPv4Address(bucket)
        return "must not be an IP address"
    except ValueError:
        pass
    if bucket.startswith("goog") or re.search(r"g[o0]{2}g[l1]e", bucket):
        return "must not start with 'goog' or contain 'google'"
    return None


def _check_storage_uri(value: str) -> str:
    if not value.strip():
        raise ValueError(f"{STORAGE_URI_EXPECTED}, got an empty string")
    scheme = urlsplit(value).scheme
    if not scheme:
        return value
    if scheme != "gs":
        raise ValueError(f"scheme '{scheme}://' is not supported: {STORAGE_URI_EXPECTED}")
    if not value.startswith("gs://"):
        raise ValueError(f"scheme 'gs:' must be followed by '//' and a bucket: {STORAGE_URI_EXPECTED}")
    bucket, _, prefix = value[len("gs://"):].partition("/")
    problem = gcs_bucket_problem(bucket)
    if problem:
        raise ValueError(f"bucket {bucket!r} breaks GCS bucket naming rules: {problem}; "
                         f"{STORAGE_URI_EXPECTED}")
    segments = prefix.rstrip("/").split("/") if prefix.rstrip("/") else []
    if any(segment in ("", ".", "..") for segment in segments) or any(c in prefix for c in "?#"):
        raise ValueError(f"prefix {prefix!r} has an empty, '.' or '..' level, '?' or '#': "
                         f"{STORAGE_URI_EXPECTED}")
    return value


StorageUri = Annotated[str, AfterValidator(_check_storage_uri)]
"""A local path (no scheme) or ``gs://bucket/prefix``: what ``mlray.storage.Storage`` reads and writes."""


class RayConfig(ConfigModel):
    """Where to run. ``address: null`` starts (or joins, inside ``ray job submit``) a local cluster."""

    address: str | None = None
    num_cpus: PositiveInt | None = Field(
        default=None, description="CPUs for a cluster started by the job itself; null = all."
    )


Location = Annotated[str, AfterValidator(check_location)]
"""A job's input or output: relative paths lie under ``storage.uri``; absolute paths, gs:// URIs as given."""

ModelLocation = Annotated[str, AfterValidator(check_model_location)]
"""A model bundle's location (as ``Location``) or a registered MLflow model, ``models:/<name>@<alias>``."""

UNDER_STORAGE = " A relative path lies under storage.uri; an absolute path or gs:// URI is taken as is."


class StorageConfig(ConfigModel):
    """The root of a job's inputs and outputs: a local path or ``gs://bucket/prefix``."""

    uri: Annotated[StorageUri, AfterValidator(local_root)] = Field(
        default="runs/storage",
        description="Root of every relative location (data, checkpoints, models, predictions, features). "
        "A relative local path is made absolute against the working directory when the config is loaded.",
    )
    stale_temp_after_s: PositiveFloat = Field(
        default=3600,
        description="Temporary `.tmp-*` objects of uploads unchanged this long are removed by the sweeper "
        "(an upload in progress is younger).",
    )

    def location(self, location: str) -> str:
        """``location`` as a URI: relative paths under ``uri`` (mlray.storage.locations)."""
        return resolve_location(location, self.uri)


class ModelTrustConfig(ConfigModel):
    """What loading a model may read and import: a bundle's spec.json or a rollout request never names code."""

    allowed_roots: list[str] | None = Field(
        default=None,
        description="Where model versions may be loaded from: folders (local or gs://), `models:/` (the whole "
        "MLflow registry) or `models:/<name>`; null: storage.uri and models:/.",
    )
    allowed_factories: list[str] = Field(
        default_factory=lambda: ["mlray.models.*"],
        description="Factories a bundle's spec.json may name: `package.*` (it and its modules), "
        "`package.module` or `package.module:function`; checked before anything is imported.",
    )


class ImprovementConfig(ConfigModel):
    """What counts as an improvement for ``timeouts.no_improvement`` (mlray.stop.NoImprovement)."""

    threshold: NonNegativeFloat = Field(
        default=0.0,
        description="An improvement must beat its reference by more than this (training: the monitored "
        "metric's best; optimization: the last incumbent that counted as an improvement): an amount in the "
        "value's own units, or with relative: true a fraction of the reference.",
    )
    relative: bool = Field(default=False, description="threshold is a fraction of the reference (0.01 = 1 %).")


class TimeoutsConfig(ConfigModel):
    """Limits in seconds; null disables a limit. Each job's section adds its own (training, optimization);
    a job without one gets these defaults. Keys that changed meaning are refused with their replacement."""

    # old key -> what to write instead; a config using it fails (a silently different meaning is worse)
    RENAMED: ClassVar[dict[str, str]] = {
        "improvement_threshold": "use improvement: {threshold: <value>, relative: true|false}",
    }

    total_runtime: PositiveFloat | None = Field(
        default=3600,
        description="Seconds the whole job may run, from its start (training: across worker restarts).",
    )
    no_improvement: PositiveFloat | None = Field(
        default=None,
        description="Seconds without an improvement (as improvement says) after which the job stops.",
    )
    improvement: ImprovementConfig = ImprovementConfig()

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        old = sorted(cls.RENAMED.keys() & data.keys()) if isinstance(data, dict) else []
        if old:
            raise PydanticCustomError("renamed_key", "; ".join(f"'{key}' is no longer a key: {cls.RENAMED[key]}"
                                                             for key in old))
        return data


class SpotCheckpointingConfig(ConfigModel):
    enabled: bool = True


class SpotConfig(ConfigModel):
    """Behaviour on preemption notice (SIGTERM, node drain)."""

    enabled: bool = True
    grace_period: PositiveFloat = Field(
        default=25.0, description="Seconds from notice to clean stop; GKE spot gives 15-30 s."
    )
    checkpointing: SpotCheckpointingConfig = SpotCheckpointingConfig()
    drain_poll_interval_s: PositiveFloat = Field(
        default=1.0,
        description="Training: how often Ray Train's preemption watcher asks for draining nodes "
        "(RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S, set from this value: the config wins over that variable; "
        "from the environment use MLRAY_SPOT__DRAIN_POLL_INTERVAL_S). Ray's own default is 5 s.",
    )


class MonitoringConfig(ConfigModel):
    enable_metrics: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MlflowConfig(ConfigModel):
    enabled: bool = True
    tracking_uri: str = "sqlite:///runs/mlflow.db"
    experiment: str = "mlray"


class JobConfig(ConfigModel):
    """What every job that runs on Ray and tracks its runs shares: its run's name, the cluster to join, where
    its files go, its MLflow tracking and its logs and metrics. A job's model subclasses this and sets its own
    ``run_name`` default."""

    run_name: RunName = "mlray-run"
    ray: RayConfig = RayConfig()
    storage: StorageConfig = StorageConfig()
    mlflow: MlflowConfig = MlflowConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
