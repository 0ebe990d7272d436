"""Model of configs/inference.yaml."""

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


class ServiceSection(ConfigModel):
    max_workers: PositiveInt = 4
    batch_size: PositiveInt = 32


class InferenceConfig(ConfigModel):
    service: ServiceSection = ServiceSection()
    monitoring: MonitoringConfig = MonitoringConfig()
    storage: StorageConfig = StorageConfig()
