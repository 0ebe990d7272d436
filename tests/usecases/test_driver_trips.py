import numpy as np
import pandas as pd

from mlray.usecases import driver_trips as dt


def test_generate_is_deterministic_and_learnable():
    a = dt.generate(num_drivers=20, hours=10, num_trips=2000, seed=3)
    b = dt.generate(num_drivers=20, hours=10, num_trips=2000, seed=3)
    pd.testing.assert_frame_equal(a.trips, b.trips)
    frame = dt.training_frame(a)
    assert list(frame.columns[2:]) == dt.FEATURE_COLUMNS + [dt.LABEL_COLUMN]
    # the label depends on the features: conv_rate is higher among completed trips
    completed = frame[frame[dt.LABEL_COLUMN] == 1]["conv_rate"].mean()
    declined = frame[frame[dt.LABEL_COLUMN] == 0]["conv_rate"].mean()
    assert completed > declined + 0.05
    assert 0.2 < frame[dt.LABEL_COLUMN].mean() < 0.8


def test_point_in_time_join_never_uses_future_values():
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    stats = pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "event_timestamp": [t0, t0 + pd.Timedelta(hours=2), t0 + pd.Timedelta(hours=1)],
            "conv_rate": [0.1, 0.9, 0.5],
            "acc_rate": [0.1, 0.9, 0.5],
            "avg_daily_trips": [1, 9, 5],
        }
    )
    trips = pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "event_timestamp": [t0 + pd.Timedelta(hours=1), t0 + pd.Timedelta(hours=3), t0],
            "trip_distance_km": [1.0, 2.0, 3.0],
        }
    )
    joined = dt.point_in_time_join(trips, stats)
    assert joined["conv_rate"].tolist() == [0.1, 0.9]  # driver 2's trip precedes its stats: dropped
    assert np.array_equal(joined["trip_distance_km"].to_numpy(), [1.0, 2.0])
