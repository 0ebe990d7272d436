"""Model of configs/or_tools.yaml."""

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


class SolverSection(ConfigModel):
    type: Literal["cp_sat", "routing"] = "cp_sat"
    time_limit: PositiveFloat = 60


class OrToolsJobConfig(ConfigModel):
    run_name: str = "mlray-optimize"
    solver: SolverSection = SolverSection()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    spot: SpotConfig = SpotConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    mlflow: MlflowConfig = MlflowConfig()
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
