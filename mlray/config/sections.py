"""Config sections that several config files share.

Defaults live here and only here; YAML files in ``configs/`` may restate them
for readability, but code never repeats them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlray.config.base import ConfigModel, NonNegativeFloat, PositiveFloat, PositiveInt


class RayConfig(ConfigModel):
    """Where to run. ``address: null`` starts (or joins, inside ``ray job submit``) a local cluster."""

    address: str | None = None
    num_cpus: PositiveInt | None = Field(
        default=None, description="CPUs for a cluster started by the job itself; null = all."
    )


class StorageConfig(ConfigModel):
    """Where artifacts and checkpoints go: a local path or ``gs://bucket/prefix``."""

    uri: str = "runs/storage"


class TimeoutsConfig(ConfigModel):
    """Limits in seconds; null disables a limit."""

    total_runtime: PositiveFloat | None = 3600
    iteration: PositiveFloat | None = 300
    no_improvement: PositiveFloat | None = None
    improvement_threshold: NonNegativeFloat = 0.0


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
        "(RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S; Ray's own default is 5 s; an explicit environment variable wins).",
    )


class MonitoringConfig(ConfigModel):
    enable_metrics: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MlflowConfig(ConfigModel):
    enabled: bool = True
    tracking_uri: str = "sqlite:///runs/mlflow.db"
    experiment: str = "mlray"
