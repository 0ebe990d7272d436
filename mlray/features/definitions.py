"""Feast objects of the default use case (driver trips), built for a given data location.

The Feast repository (``configs/feature_store/feature_definitions.py``) and
mlray's own code both build their objects here, so the CLI and the library
apply the same definitions; only where the rows live differs by config:
Parquet files in a folder, or BigQuery tables in a dataset.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from feast import (
    BigQuerySource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
)
from feast.data_source import DataSource
from feast.transformation.python_transformation import PythonTransformation
from feast.types import Float32, Float64, Int64
from feast.value_type import ValueType

from mlray.config.features import FeatureSourcesSection
from mlray.usecases import driver_trips

DRIVER_STATS_TABLE = "driver_stats"  # jobs/preprocess.py writes <output>/driver_stats.parquet
FEATURE_SERVICE = "driver_trips_v1"
DRIVER_STATS_VIEW = "driver_hourly_stats"
TRIP_FEATURES_VIEW = "trip_features"
# Statistics are hourly; one older than a day says nothing about the driver now.
DRIVER_STATS_TTL = timedelta(days=1)


@dataclass(frozen=True)
class FeatureDefinitions:
    driver: Entity
    driver_stats_source: DataSource
    driver_hourly_stats: FeatureView
    trip_request: RequestSource
    trip_features: OnDemandFeatureView
    driver_trips_v1: FeatureService

    def objects(self) -> list[Any]:
        """Everything ``FeatureStore.apply`` takes, in dependency order."""
        return [
            self.driver,
            self.driver_stats_source,
            self.driver_hourly_stats,
            self.trip_request,
            self.trip_features,
            self.driver_trips_v1,
        ]

    def entities(self) -> list[Entity]:
        return [obj for obj in self.objects() if isinstance(obj, Entity)]

    def feature_views(self) -> list[FeatureView]:
        return [obj for obj in self.objects() if type(obj) is FeatureView]


def distance_per_daily_trip(inputs: dict[str, Any]) -> dict[str, Any]:
    """How much of a driver's usual day this one offer is: long trips for low-volume drivers stand out."""
    return {
        "distance_per_daily_trip": [
            float(distance) / max(float(trips), 1.0) if trips is not None and distance is not None else None
            for distance, trips in zip(inputs["trip_distance_km"], inputs["avg_daily_trips"], strict=True)
        ]
    }


def table_source(sources: FeatureSourcesSection, table: str, **columns: str) -> DataSource:
    """The batch source of one table: ``<folder>/<table>.parquet`` or ``<project.dataset>.<table>``."""
    location = sources.location.rstrip("/")
    if sources.kind == "bigquery":
        return BigQuerySource(name=f"{table}_source", table=f"{location}.{table}", **columns)
    return FileSource(name=f"{table}_source", path=f"{location}/{table}.parquet", **columns)


def build_definitions(sources: FeatureSourcesSection) -> FeatureDefinitions:
    driver = Entity(
        name="driver",
        join_keys=[driver_trips.ENTITY_COLUMN],
        value_type=ValueType.INT64,
        description="A ride-hailing driver.",
    )
    driver_stats_source = table_source(
        sources,
        DRIVER_STATS_TABLE,
        timestamp_field=driver_trips.TIMESTAMP_COLUMN,
        created_timestamp_column="created",
    )
    driver_hourly_stats = FeatureView(
        name=DRIVER_STATS_VIEW,
        entities=[driver],
        ttl=DRIVER_STATS_TTL,
        schema=[
            Field(name="conv_rate", dtype=Float32),
            Field(name="acc_rate", dtype=Float32),
            Field(name="avg_daily_trips", dtype=Int64),
        ],
        source=driver_stats_source,
        online=True,
        description="Hourly conversion, acceptance and volume statistics per driver.",
    )
    trip_request = RequestSource(
        name="trip_request",
        schema=[Field(name=name, dtype=Float64) for name in driver_trips.REQUEST_FEATURES],
    )
    trip_features = OnDemandFeatureView(
        name=TRIP_FEATURES_VIEW,
        sources=[driver_hourly_stats, trip_request],
        schema=[Field(name="distance_per_daily_trip", dtype=Float64)],
        feature_transformation=PythonTransformation(
            udf=distance_per_daily_trip, udf_string=inspect.getsource(distance_per_daily_trip)
        ),
        mode="python",
        description="Request-time features of a trip offer.",
    )
    driver_trips_v1 = FeatureService(
        name=FEATURE_SERVICE,
        features=[driver_hourly_stats, trip_features],
        description="Model inputs of the driver-trips classifier, for training and serving alike.",
    )
    return FeatureDefinitions(
        driver=driver,
        driver_stats_source=driver_stats_source,
        driver_hourly_stats=driver_hourly_stats,
        trip_request=trip_request,
        trip_features=trip_features,
        driver_trips_v1=driver_trips_v1,
    )
