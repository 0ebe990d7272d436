"""A small driver-trips data set on disk and a feature store configured over it.

Each test module gets its own data folder, state folder (registry, SQLite online
store) and ``features.yaml``; modules that only read share one applied store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlray.config.features import FeaturesConfig
from mlray.config.loader import load_config
from mlray.usecases import driver_trips

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPO_PATH = PROJECT_ROOT / "configs" / "feature_store"
NUM_DRIVERS = 12
HOURS = 24
START = pd.Timestamp("2026-01-01", tz="UTC")


@dataclass(frozen=True)
class FeatureSetup:
    config_path: Path
    data_dir: Path
    state_dir: Path
    data: driver_trips.DriverTripsData

    @property
    def config(self) -> FeaturesConfig:
        return load_config(FeaturesConfig, self.config_path, environ={})

    @property
    def trips_path(self) -> Path:
        return self.data_dir / "trips.parquet"


def write_features_config(path: Path, data_dir: Path, state_dir: Path, **materialize: object) -> Path:
    config = {
        "repo": {"path": str(REPO_PATH), "state_dir": str(state_dir)},
        "sources": {"kind": "file", "location": str(data_dir)},
        "materialize": materialize,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def make_setup(root: Path, num_trips: int = 300, seed: int = 7) -> FeatureSetup:
    data = driver_trips.generate(num_drivers=NUM_DRIVERS, hours=HOURS, num_trips=num_trips, seed=seed, start=START)
    data_dir, state_dir = root / "data", root / "state"
    data_dir.mkdir(parents=True)
    data.driver_stats.to_parquet(data_dir / "driver_stats.parquet")
    data.trips.to_parquet(data_dir / "trips.parquet")
    config_path = write_features_config(root / "features.yaml", data_dir, state_dir)
    return FeatureSetup(config_path=config_path, data_dir=data_dir, state_dir=state_dir, data=data)


@pytest.fixture(scope="module")
def feature_setup(tmp_path_factory: pytest.TempPathFactory) -> FeatureSetup:
    """Data and config for this module; nothing applied yet."""
    return make_setup(tmp_path_factory.mktemp("features"))


@pytest.fixture
def fresh_setup(tmp_path: Path) -> FeatureSetup:
    """Data and config for one test that changes files or store state."""
    return make_setup(tmp_path)
