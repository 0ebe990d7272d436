"""A view whose source file is missing or mismatched fails early, naming the view and the field."""

from __future__ import annotations

import pytest

from mlray.features.historical import feature_service_training_data
from mlray.features.materialize import materialize
from mlray.features.store import open_store, prepare_store
from mlray.features.validation import FeatureSourceError

SOURCE = "driver_stats.parquet"


def test_missing_source_file_names_the_view_and_the_path(fresh_setup):
    (fresh_setup.data_dir / SOURCE).unlink()
    with pytest.raises(FeatureSourceError, match=rf"feature view 'driver_hourly_stats': source file .*{SOURCE} not found"):
        materialize(fresh_setup.config)
    # nothing was applied before the check failed
    assert open_store(fresh_setup.config).list_feature_views() == []


def test_missing_field_names_the_view_and_the_field(fresh_setup):
    fresh_setup.data.driver_stats.drop(columns=["acc_rate"]).to_parquet(fresh_setup.data_dir / SOURCE)
    with pytest.raises(FeatureSourceError, match=r"feature view 'driver_hourly_stats': field 'acc_rate' is missing"):
        feature_service_training_data(entity_source=str(fresh_setup.trips_path), features_config=str(fresh_setup.config_path))


@pytest.mark.parametrize(
    ("column", "bad_values", "declared"),
    [("conv_rate", "high", "FLOAT"), ("avg_daily_trips", 2.5, "INT64"), ("event_timestamp", "yesterday", "UNIX_TIMESTAMP")],
)
def test_mistyped_field_names_the_view_the_field_and_both_types(fresh_setup, column, bad_values, declared):
    stats = fresh_setup.data.driver_stats.copy()
    stats[column] = bad_values
    stats.to_parquet(fresh_setup.data_dir / SOURCE)
    with pytest.raises(FeatureSourceError, match=rf"'driver_hourly_stats': field '{column}' is \w+ in .*declares {declared}"):
        prepare_store(fresh_setup.config)
