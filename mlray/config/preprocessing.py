"""Model of configs/preprocessing.yaml."""

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


class PreprocessingConfig(ConfigModel):
    output: str = "data/processed"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
