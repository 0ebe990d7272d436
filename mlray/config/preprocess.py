"""Model of configs/preprocess.yaml: the default use case's data, written as Parquet."""

from __future__ import annotations

from pydantic import Field

from mlray.config.base import ConfigModel, NonNegativeInt, PositiveInt
from mlray.config.sections import UNDER_STORAGE, Location, RayConfig, StorageConfig


class DriverTripsSection(ConfigModel):
    """Arguments of ``mlray.usecases.driver_trips.generate``."""

    num_drivers: PositiveInt = 200
    hours: PositiveInt = 72
    num_trips: PositiveInt = 20_000
    seed: NonNegativeInt = 0


class PreprocessJobConfig(ConfigModel):
    output: Location = Field(
        default="data/processed",
        description="Folder for driver_stats.parquet, trips.parquet and training.parquet." + UNDER_STORAGE,
    )
    driver_trips: DriverTripsSection = DriverTripsSection()
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
