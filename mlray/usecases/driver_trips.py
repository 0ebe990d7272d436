"""The default use case: will a ride-hailing driver complete an offered trip?

Synthetic but learnable, and time-aware so that the feature store's
point-in-time joins matter:

* ``driver_stats``: hourly statistics per driver (``driver_id``,
  ``event_timestamp``, ``created``, ``conv_rate``, ``acc_rate``,
  ``avg_daily_trips``) whose values drift over time.
* ``trips``: trip offers (``driver_id``, ``event_timestamp``,
  ``trip_distance_km``) with the label ``completed`` drawn from a logistic
  function of the driver's statistics *as they were at the offer time* (the
  latest row at or before it) and the trip distance.

``point_in_time_join`` reproduces that join in pandas, so training can run
without Feast and tests can compare Feast's answer to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ENTITY_COLUMN = "driver_id"
TIMESTAMP_COLUMN = "event_timestamp"
DRIVER_FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]
REQUEST_FEATURES = ["trip_distance_km"]
FEATURE_COLUMNS = DRIVER_FEATURES + REQUEST_FEATURES
LABEL_COLUMN = "completed"

# Ground truth of the synthetic label: logit = w . features + bias.
_TRUE_WEIGHTS = np.array([4.0, 3.0, 0.04, -0.25])
_TRUE_BIAS = -3.5


@dataclass(frozen=True)
class DriverTripsData:
    driver_stats: pd.DataFrame
    trips: pd.DataFrame


def generate(
    num_drivers: int = 200,
    hours: int = 72,
    num_trips: int = 20_000,
    seed: int = 0,
    start: pd.Timestamp = pd.Timestamp("2026-01-01", tz="UTC"),
) -> DriverTripsData:
    """Hourly driver statistics and labelled trip offers over ``hours`` hours."""
    rng = np.random.default_rng(seed)
    driver_ids = np.arange(1001, 1001 + num_drivers, dtype=np.int64)
    timestamps = start + pd.to_timedelta(np.arange(hours), unit="h")

    base_conv = rng.uniform(0.1, 0.9, num_drivers)
    base_acc = rng.uniform(0.2, 0.95, num_drivers)
    base_trips = rng.integers(5, 60, num_drivers)
    drift = rng.normal(0, 0.03, (hours, num_drivers)).cumsum(axis=0)
    stats = pd.DataFrame(
        {
            ENTITY_COLUMN: np.tile(driver_ids, hours),
            TIMESTAMP_COLUMN: np.repeat(timestamps, num_drivers),
            "conv_rate": np.clip(base_conv + drift, 0, 1).ravel().astype(np.float32),
            "acc_rate": np.clip(base_acc - drift, 0, 1).ravel().astype(np.float32),
            "avg_daily_trips": np.clip(
                base_trips + rng.integers(-3, 4, (hours, num_drivers)), 0, None
            ).ravel().astype(np.int64),
        }
    )
    stats["created"] = stats[TIMESTAMP_COLUMN]

    offset_s = rng.uniform(0, hours * 3600, num_trips)
    trips = pd.DataFrame(
        {
            ENTITY_COLUMN: rng.choice(driver_ids, num_trips),
            TIMESTAMP_COLUMN: start + pd.to_timedelta(offset_s, unit="s"),
            "trip_distance_km": rng.gamma(2.0, 4.0, num_trips).astype(np.float32),
        }
    )
    joined = point_in_time_join(trips, stats)
    logits = joined[FEATURE_COLUMNS].to_numpy(np.float64) @ _TRUE_WEIGHTS + _TRUE_BIAS
    probability = 1 / (1 + np.exp(-logits))
    trips[LABEL_COLUMN] = (rng.uniform(size=num_trips) < probability).astype(np.int64)
    return DriverTripsData(driver_stats=stats, trips=trips)


def point_in_time_join(trips: pd.DataFrame, driver_stats: pd.DataFrame) -> pd.DataFrame:
    """Each trip with its driver's latest statistics at or before the trip time.

    Trips that precede every statistic of their driver are dropped, as a
    feature store would leave them without values.
    """
    left = trips.reset_index(drop=True).assign(_row=lambda df: np.arange(len(df)))
    joined = pd.merge_asof(
        left.sort_values(TIMESTAMP_COLUMN),
        driver_stats[[ENTITY_COLUMN, TIMESTAMP_COLUMN, *DRIVER_FEATURES]].sort_values(TIMESTAMP_COLUMN),
        on=TIMESTAMP_COLUMN,
        by=ENTITY_COLUMN,
        direction="backward",
    )
    joined = joined.dropna(subset=DRIVER_FEATURES).sort_values("_row").drop(columns="_row")
    return joined.reset_index(drop=True)


def training_frame(data: DriverTripsData) -> pd.DataFrame:
    """Feature columns plus label, one row per trip: what training consumes."""
    joined = point_in_time_join(data.trips, data.driver_stats)
    return joined[[ENTITY_COLUMN, TIMESTAMP_COLUMN, *FEATURE_COLUMNS, LABEL_COLUMN]]
