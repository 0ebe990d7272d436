"""Small real data for training tests, written by the preprocessing job's library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlray.config import PreprocessJobConfig, TrainJobConfig
from mlray.usecases.preprocess import TRAINING_FILE, run_preprocessing


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("driver_trips")
    run_preprocessing(PreprocessJobConfig(output=str(folder), driver_trips={"num_drivers": 40, "hours": 24,
                                                                             "num_trips": 3000}))
    return folder


def training_config(data_dir: Path, storage_uri: str, mlflow_uri: str, **sections: Any) -> TrainJobConfig:
    """A tiny, fast training config; ``sections`` override top-level sections (merged one level deep)."""
    base: dict[str, Any] = {
        "run_name": "t",
        "data": {"kwargs": {"path": str(data_dir / TRAINING_FILE)}},
        "model": {"kwargs": {"hidden": [8]}},
        "training": {"num_workers": 2, "num_epochs": 3, "batch_size": 256, "lr": 0.01,
                     "checkpointing": {"frequency": 1, "keep_best": 1}, "max_failures": 2},
        "timeouts": {"total_runtime": None, "iteration": None, "no_improvement": None},
        "mlflow": {"tracking_uri": mlflow_uri, "experiment": "tests"},
        "storage": {"uri": storage_uri},
    }
    for name, value in sections.items():
        base[name] = {**base[name], **value} if isinstance(value, dict) and isinstance(base.get(name), dict) else value
    return TrainJobConfig.model_validate(base)
