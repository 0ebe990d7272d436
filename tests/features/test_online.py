"""The serving enricher: entity keys (+ request fields) -> the model's feature rows, with freshness."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch

from mlray.features.materialize import materialize
from mlray.features.online import OnlineFeatureEnricher
from mlray.models import build_mlp
from mlray.serve.prediction.features import InstanceError, UnknownEntityError
from mlray.usecases import driver_trips
from tests.features.conftest import FeatureSetup

MODEL_FEATURES = driver_trips.FEATURE_COLUMNS  # conv_rate, acc_rate, avg_daily_trips, trip_distance_km


@pytest.fixture(scope="module")
def materialized(feature_setup: FeatureSetup) -> FeatureSetup:
    materialize(feature_setup.config)
    return feature_setup


@pytest.fixture(scope="module")
def enricher(materialized: FeatureSetup) -> OnlineFeatureEnricher:
    return OnlineFeatureEnricher(features_config=str(materialized.config_path), feature_names=MODEL_FEATURES)


def full_vectors(setup: FeatureSetup, instances: list[dict]) -> list[list[float]]:
    """What a client would send without the feature store: latest stats + its own request fields."""
    latest = setup.data.driver_stats.sort_values("event_timestamp").groupby("driver_id").last()
    return [
        [*latest.loc[i["driver_id"], driver_trips.DRIVER_FEATURES].astype(float), i["trip_distance_km"]]
        for i in instances
    ]


INSTANCES = [
    {"driver_id": 1003, "trip_distance_km": 2.5},
    {"driver_id": 1001, "trip_distance_km": 14.0},
    {"driver_id": 1003, "trip_distance_km": 7.25},
]


def test_enriched_rows_equal_the_full_vectors_and_give_equal_predictions(materialized, enricher):
    rows, _ = enricher.enrich([dict(i) for i in INSTANCES])
    expected = full_vectors(materialized, INSTANCES)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)
    torch.manual_seed(0)
    model = build_mlp(input_dim=len(MODEL_FEATURES)).eval()
    with torch.no_grad():
        from_store = model(torch.tensor(rows, dtype=torch.float32))
        direct = model(torch.tensor(expected, dtype=torch.float32))
    torch.testing.assert_close(from_store, direct)


def test_metadata_reports_when_each_rows_features_were_observed(materialized, enricher):
    _, metadata = enricher.enrich([dict(i) for i in INSTANCES])
    newest = materialized.data.driver_stats.event_timestamp.max()
    assert [pd.Timestamp(ts) for ts in metadata["event_timestamps"]] == [newest] * len(INSTANCES)
    expected_age = time.time() - newest.timestamp()
    assert all(abs(age - expected_age) < 60 for age in metadata["age_s"])
    assert metadata["feature_service"] == "driver_trips_v1"


def test_default_order_is_the_services_and_includes_the_on_demand_feature(materialized):
    enricher = OnlineFeatureEnricher(features_config=str(materialized.config_path))
    rows, _ = enricher.enrich([{"driver_id": 1001, "trip_distance_km": 14.0}])
    assert enricher.feature_names == [*MODEL_FEATURES, "distance_per_daily_trip"]
    assert rows[0][-1] == pytest.approx(14.0 / max(rows[0][2], 1))


def test_unknown_entities_raise_naming_the_key(enricher):
    with pytest.raises(UnknownEntityError, match="driver_id=999"):
        enricher.enrich([{"driver_id": 1001, "trip_distance_km": 1.0}, {"driver_id": 999, "trip_distance_km": 1.0}])


def test_instances_without_keys_or_request_fields_are_refused_naming_the_field(enricher):
    with pytest.raises(InstanceError) as caught:
        enricher.enrich([{"driver_id": 1001}])
    assert caught.value.problems[0]["loc"][-1] == "trip_distance_km"


def test_feature_names_the_service_does_not_serve_are_refused(materialized):
    with pytest.raises(ValueError, match=r"feature_names: \['speed'\]"):
        OnlineFeatureEnricher(features_config=str(materialized.config_path), feature_names=["conv_rate", "speed"])
