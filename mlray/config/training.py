"""Model of configs/training.yaml."""

from __future__ import annotations

from typing import Literal

from mlray.config.base import ConfigModel, PositiveFloat, PositiveInt
from mlray.config.sections import (
    MlflowConfig,
    MonitoringConfig,
    RayConfig,
    SpotConfig,
    StorageConfig,
    TimeoutsConfig,
)


class CheckpointingConfig(ConfigModel):
    enabled: bool = True
    frequency: PositiveInt = 5


class TrainingSection(ConfigModel):
    distributed: bool = True
    num_epochs: PositiveInt = 100
    batch_size: PositiveInt = 32
    checkpointing: CheckpointingConfig = CheckpointingConfig()


class TrainingJobConfig(ConfigModel):
    run_name: str = "mlray-train"
    training: TrainingSection = TrainingSection()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    spot: SpotConfig = SpotConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    mlflow: MlflowConfig = MlflowConfig()
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
