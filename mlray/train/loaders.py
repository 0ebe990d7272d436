"""Data loaders shipped with mlray: ``data.loader`` in configs/train.yaml names one of these or your own."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mlray.storage import Storage
from mlray.train.data import TrainingData
from mlray.usecases.driver_trips import FEATURE_COLUMNS, LABEL_COLUMN


def parquet_frame(
    path: str = "data/processed/training.parquet",
    feature_names: Sequence[str] = tuple(FEATURE_COLUMNS),
    label: str = LABEL_COLUMN,
) -> TrainingData:
    """A Parquet file (local or gs://) with feature columns and a label, as ``jobs.preprocess`` writes it."""
    folder, _, name = path.rstrip("/").rpartition("/")
    storage = Storage(folder or ".")
    if not storage.exists(name):
        raise FileNotFoundError(f"training data {path!r} not found: run python -m jobs.preprocess first")
    with storage.fs.open(storage.path(name), "rb") as handle:
        frame = pd.read_parquet(handle)
    return TrainingData(frame=frame, feature_names=list(feature_names), label=label, tags={"data.path": storage.url(name)})
