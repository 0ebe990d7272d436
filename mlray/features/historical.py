"""Training data through the feature service: Feast's point-in-time join over an entity source.

Named in ``configs/train.yaml``::

    data:
      loader: mlray.features.historical:feature_service_training_data
      kwargs:
        entity_source: data/processed/trips.parquet   # under storage.uri; driver_id, event_timestamp, ...
        features_config: configs/features.yaml         # repository, stores, default feature service
        feature_service: driver_trips_v1

Each entity row gets the feature values as they were at its timestamp (never
later ones); the MLflow run records the service's name and version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from mlray.config.features import FeaturesConfig
from mlray.config.loader import load_config
from mlray.features.service import get_service, service_layout
from mlray.features.store import prepare_store
from mlray.storage import Storage
from mlray.train.data import TrainingData
from mlray.usecases.driver_trips import LABEL_COLUMN, TIMESTAMP_COLUMN

log = logging.getLogger(__name__)


def read_entity_source(path: str) -> pd.DataFrame:
    folder, _, name = path.rstrip("/").rpartition("/")
    storage = Storage(folder or ".")
    if not storage.exists(name):
        raise FileNotFoundError(f"entity_source {path!r} not found (jobs/preprocess.py writes trips.parquet)")
    with storage.fs.open(storage.path(name), "rb") as handle:
        return pd.read_parquet(handle)


def feature_service_training_data(
    entity_source: str,
    features_config: str = "configs/features.yaml",
    feature_service: str | None = None,
    label: str = LABEL_COLUMN,
    feature_names: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
) -> TrainingData:
    """``get_historical_features`` over ``entity_source`` (keys, timestamp, request fields, label).

    Rows without stored features at their time (before a driver's first
    statistics, or older than the view's TTL) are dropped, and counted in the tags.
    """
    config = load_config(FeaturesConfig, features_config, overrides)
    name = feature_service or config.feature_service
    store = prepare_store(config).store
    service = get_service(store, name)
    layout = service_layout(store, service)
    entities = read_entity_source(entity_source)
    required = [*layout.join_keys, TIMESTAMP_COLUMN, *layout.request_fields, label]
    missing = [column for column in required if column not in entities.columns]
    if missing:
        raise ValueError(f"entity_source {entity_source!r}: columns {missing} missing; have {list(entities.columns)}")
    frame = store.get_historical_features(entity_df=entities, features=service).to_df()
    names = list(feature_names) if feature_names is not None else layout.feature_names
    complete = frame.dropna(subset=names).sort_values(TIMESTAMP_COLUMN, kind="stable").reset_index(drop=True)
    dropped = len(frame) - len(complete)
    if dropped:
        log.info("feature service %s: %d of %d entity rows have no features at their time", name, dropped, len(frame))
    tags = {
        "feature_service.name": name,
        "feature_service.version": layout.version,
        "feature_service.project": store.project,
        "feature_service.rows_without_features": str(dropped),
        "data.entity_source": entity_source,
    }
    return TrainingData(frame=complete, feature_names=names, label=label, tags=tags)
