"""The Feast repository's objects, for the ``feast`` CLI (mlray builds the same ones itself).

Where the rows live comes from ``configs/features.yaml`` (``sources``), or
another file named by ``MLRAY_FEATURES_CONFIG``, with the usual environment
overrides (``MLRAY_SOURCES__KIND``, ``MLRAY_SOURCES__LOCATION``, ``MLRAY_STORAGE__URI``). A relative
location lies under ``storage.uri`` (runs/storage under the working directory by default), as for
``python -m jobs.materialize``.
"""

import os
from pathlib import Path

from mlray.config.features import FeaturesConfig
from mlray.config.loader import load_config
from mlray.features.store import definitions

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_config = load_config(FeaturesConfig, os.environ.get("MLRAY_FEATURES_CONFIG", PROJECT_ROOT / "configs" / "features.yaml"))
_definitions = definitions(_config)

driver = _definitions.driver
driver_stats_source = _definitions.driver_stats_source
driver_hourly_stats = _definitions.driver_hourly_stats
trip_request = _definitions.trip_request
trip_features = _definitions.trip_features
driver_trips_v1 = _definitions.driver_trips_v1
