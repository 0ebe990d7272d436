"""materialize_incremental into SQLite, then online reads: latest values, only new rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlray.features.materialize import materialize
from mlray.features.store import open_store
from mlray.usecases import driver_trips
from tests.features.conftest import START, FeatureSetup

DRIVER_FEATURES = driver_trips.DRIVER_FEATURES


def online_values(setup: FeatureSetup, drivers: list[int]) -> pd.DataFrame:
    store = open_store(setup.config)
    response = store.get_online_features(
        features=[f"driver_hourly_stats:{name}" for name in DRIVER_FEATURES],
        entity_rows=[{"driver_id": driver} for driver in drivers],
    )
    return response.to_df().set_index("driver_id")


def latest_at_or_before(stats: pd.DataFrame, moment: pd.Timestamp) -> pd.DataFrame:
    upto = stats[stats.event_timestamp <= moment]
    return upto.sort_values("event_timestamp").groupby("driver_id").last()


def with_end(setup: FeatureSetup, end: pd.Timestamp):
    config = setup.config
    return config.model_copy(update={"materialize": config.materialize.model_copy(update={"end": end.to_pydatetime()})})


def test_materialize_then_online_reads_return_the_latest_values(fresh_setup, capsys):
    stats = fresh_setup.data.driver_stats
    end = START + pd.Timedelta(hours=10, minutes=30)
    report = materialize(with_end(fresh_setup, end))
    # Progress by view: its last line (stderr is no terminal here) says every view is done.
    views = [name for name, window in report["views"].items() if "skipped" not in window]
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("materialize: ")]
    assert views and progress[-1].startswith(f"materialize: {len(views)}/{len(views)} views (100%)")
    assert progress[-1].endswith(views[-1])
    drivers = sorted(stats.driver_id.unique())
    online = online_values(fresh_setup, drivers)
    expected = latest_at_or_before(stats, end)
    np.testing.assert_allclose(online.loc[drivers, DRIVER_FEATURES].astype(float), expected.loc[drivers, DRIVER_FEATURES].astype(float), rtol=1e-6)
    assert report["views"]["driver_hourly_stats"]["source_rows"] == (stats.event_timestamp <= end).sum()
    assert "driver_hourly_stats" in report["applied"]


def test_a_second_materialization_picks_up_only_new_rows(fresh_setup):
    stats = fresh_setup.data.driver_stats
    first_end = START + pd.Timedelta(hours=10, minutes=30)
    second_end = START + pd.Timedelta(hours=20, minutes=30)
    source = fresh_setup.data_dir / "driver_stats.parquet"
    stats[stats.event_timestamp <= first_end].to_parquet(source)
    materialize(with_end(fresh_setup, first_end))

    # New rows arrive for half of the drivers; an old row (before the first end) is rewritten.
    drivers = sorted(stats.driver_id.unique())
    movers, idle = drivers[: len(drivers) // 2], drivers[len(drivers) // 2 :]
    new_rows = stats[(stats.event_timestamp > first_end) & stats.driver_id.isin(movers)]
    old = stats[stats.event_timestamp <= first_end].copy()
    rewritten = (old.driver_id == idle[0]) & (old.event_timestamp == START + pd.Timedelta(hours=10))
    old.loc[rewritten, "conv_rate"] = np.float32(0.999)
    pd.concat([old, new_rows]).to_parquet(source)
    report = materialize(with_end(fresh_setup, second_end))

    window = report["views"]["driver_hourly_stats"]
    assert pd.Timestamp(window["start"]) == first_end and pd.Timestamp(window["end"]) == second_end
    assert window["source_rows"] == len(new_rows[new_rows.event_timestamp <= second_end])
    assert report["applied"] == []  # definitions unchanged: no second apply
    online = online_values(fresh_setup, drivers)
    np.testing.assert_allclose(
        online.loc[movers, DRIVER_FEATURES].astype(float),
        latest_at_or_before(new_rows, second_end).loc[movers, DRIVER_FEATURES].astype(float),
        rtol=1e-6,
    )
    # The rewritten old row lies in the already-materialized window: not read again.
    original = latest_at_or_before(stats, first_end)
    np.testing.assert_allclose(online.loc[idle, "conv_rate"].astype(float), original.loc[idle, "conv_rate"].astype(float), rtol=1e-6)
    assert online.loc[idle[0], "conv_rate"] != np.float32(0.999)


def test_a_run_for_an_end_already_covered_changes_nothing(fresh_setup):
    later, earlier = START + pd.Timedelta(hours=20), START + pd.Timedelta(hours=10)
    materialize(with_end(fresh_setup, later))
    drivers = sorted(fresh_setup.data.driver_stats.driver_id.unique())
    before = online_values(fresh_setup, drivers)

    report = materialize(with_end(fresh_setup, earlier))  # a late Airflow run, or a backfill

    window = report["views"]["driver_hourly_stats"]
    assert window["source_rows"] == 0 and "already materialized up to" in window["skipped"]
    view = open_store(fresh_setup.config).get_feature_view("driver_hourly_stats")
    assert all(start <= end for start, end in view.materialization_intervals)  # no backwards interval recorded
    assert pd.Timestamp(view.most_recent_end_time) == later
    pd.testing.assert_frame_equal(online_values(fresh_setup, drivers), before)


def test_unknown_views_to_materialize_are_refused_naming_them(fresh_setup):
    config = fresh_setup.config
    config.materialize.views = ["driver_hourly_stats", "rider_stats"]
    with pytest.raises(ValueError, match=r"materialize.views: \['rider_stats'\] are not online feature views"):
        materialize(config)
