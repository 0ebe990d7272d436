"""get_historical_features through the feature service: point-in-time correct training data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlray.features.historical import feature_service_training_data
from mlray.features.store import prepare_store
from mlray.usecases import driver_trips
from tests.features.conftest import FeatureSetup

DRIVER_FEATURES = driver_trips.DRIVER_FEATURES


@pytest.fixture(scope="module")
def training(feature_setup: FeatureSetup):
    return feature_service_training_data(entity_source=str(feature_setup.trips_path), features_config=str(feature_setup.config_path))


def stats_of(setup: FeatureSetup, driver: int, at: pd.Timestamp) -> pd.Series:
    stats = setup.data.driver_stats
    return stats[(stats.driver_id == driver) & (stats.event_timestamp == at)].iloc[0]


def test_entity_rows_between_updates_get_the_older_values_never_future_ones(feature_setup):
    store = prepare_store(feature_setup.config).store
    hour = pd.Timestamp("2026-01-01 05:00", tz="UTC")
    entities = pd.DataFrame(
        {
            "driver_id": [1001, 1001, 1002, 1003],
            "event_timestamp": [
                hour + pd.Timedelta(minutes=59),  # between 05:00 and 06:00 updates
                hour,  # exactly at an update: that update counts
                hour - pd.Timedelta(seconds=1),  # just before: the 04:00 values
                pd.Timestamp("2025-12-31 23:00", tz="UTC"),  # before any statistic: nothing
            ],
            "trip_distance_km": [5.0, 5.0, 5.0, 5.0],
        }
    )
    frame = (
        store.get_historical_features(entity_df=entities, features=store.get_feature_service("driver_trips_v1"))
        .to_df()
        .set_index(["driver_id", "event_timestamp"])
    )
    expected_rows = [
        (1001, hour + pd.Timedelta(minutes=59), stats_of(feature_setup, 1001, hour)),
        (1001, hour, stats_of(feature_setup, 1001, hour)),
        (1002, hour - pd.Timedelta(seconds=1), stats_of(feature_setup, 1002, hour - pd.Timedelta(hours=1))),
    ]
    for driver, moment, expected in expected_rows:
        row = frame.loc[(driver, moment)]
        np.testing.assert_allclose(row[DRIVER_FEATURES].astype(float), expected[DRIVER_FEATURES].astype(float), rtol=1e-6)
        later = stats_of(feature_setup, driver, expected.event_timestamp + pd.Timedelta(hours=1))
        assert not np.allclose(row[DRIVER_FEATURES].astype(float), later[DRIVER_FEATURES].astype(float))
    before_any = (1003, pd.Timestamp("2025-12-31 23:00", tz="UTC"))
    # Feast's file store leaves such a row out; other stores return it with nulls.
    assert before_any not in frame.index or frame.loc[before_any][DRIVER_FEATURES].isna().all()


def test_training_frame_matches_an_independent_point_in_time_join(feature_setup, training):
    expected = driver_trips.point_in_time_join(feature_setup.data.trips, feature_setup.data.driver_stats)
    key = ["driver_id", "event_timestamp"]
    merged = training.frame.merge(expected, on=key, suffixes=("", "_expected"), validate="one_to_one")
    assert len(merged) == len(expected) == len(training.frame)
    for name in DRIVER_FEATURES + ["completed"]:
        np.testing.assert_allclose(merged[name].astype(float), merged[f"{name}_expected"].astype(float), rtol=1e-6)
    # the on-demand view's request-time transform
    np.testing.assert_allclose(
        merged["distance_per_daily_trip"], merged["trip_distance_km"] / merged["avg_daily_trips"].clip(lower=1), rtol=1e-6
    )


def test_loader_returns_the_services_features_and_tags_its_name_and_version(training):
    assert training.feature_names == [*DRIVER_FEATURES, "trip_distance_km", "distance_per_daily_trip"]
    assert training.label == "completed"
    assert training.tags["feature_service.name"] == "driver_trips_v1"
    assert len(training.tags["feature_service.version"]) == 12
    assert training.frame[training.feature_names].notna().all().all()


def test_the_version_is_stable_and_follows_the_definition(feature_setup, training):
    again = feature_service_training_data(
        entity_source=str(feature_setup.trips_path),
        features_config=str(feature_setup.config_path),
        feature_names=driver_trips.FEATURE_COLUMNS,
    )
    assert again.tags["feature_service.version"] == training.tags["feature_service.version"]
    assert again.feature_names == driver_trips.FEATURE_COLUMNS


def test_entity_source_without_request_fields_is_refused_naming_them(feature_setup, tmp_path):
    trips = feature_setup.data.trips.drop(columns=["trip_distance_km"])
    trips.to_parquet(tmp_path / "trips.parquet")
    with pytest.raises(ValueError, match=r"entity_source .*\['trip_distance_km'\] missing"):
        feature_service_training_data(entity_source=str(tmp_path / "trips.parquet"), features_config=str(feature_setup.config_path))


def test_unknown_feature_service_is_refused_listing_the_known_ones(feature_setup):
    with pytest.raises(ValueError, match=r"feature_service: 'nope' .*driver_trips_v1"):
        feature_service_training_data(
            entity_source=str(feature_setup.trips_path), features_config=str(feature_setup.config_path), feature_service="nope"
        )
