"""The default use case's data as Parquet: raw tables for the feature store, a joined frame for training."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlray.config.preprocess import PreprocessJobConfig
from mlray.storage import Storage
from mlray.usecases import driver_trips

DRIVER_STATS_FILE = "driver_stats.parquet"
TRIPS_FILE = "trips.parquet"
TRAINING_FILE = "training.parquet"


def write_parquet(storage: Storage, name: str, frame: pd.DataFrame) -> str:
    with storage.open_atomic(name) as handle:
        frame.to_parquet(handle, index=False)
    return storage.url(name)


def run_preprocessing(config: PreprocessJobConfig) -> dict[str, Any]:
    settings = config.driver_trips
    data = driver_trips.generate(settings.num_drivers, settings.hours, settings.num_trips, settings.seed)
    frame = driver_trips.training_frame(data)
    output = Storage(config.storage.location(config.output))
    return {
        "status": "ok",
        "rows": {"driver_stats": len(data.driver_stats), "trips": len(data.trips), "training": len(frame)},
        "artifacts": {
            "driver_stats": write_parquet(output, DRIVER_STATS_FILE, data.driver_stats),
            "trips": write_parquet(output, TRIPS_FILE, data.trips),
            "training": write_parquet(output, TRAINING_FILE, frame),
        },
        "positive_rate": round(float(frame[driver_trips.LABEL_COLUMN].mean()), 4),
    }
