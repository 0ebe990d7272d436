"""Driver-side data preparation: load through the configured loader, split, and size the model."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlray.config.train import TrainJobConfig
from mlray.imports import import_object
from mlray.models import ModelSpec
from mlray.train.data import TrainingData


@dataclass
class PreparedData:
    """Train and validation arrays every rank shards, plus what the model needs to be built."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    feature_names: list[str]
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def feature_mean(self) -> list[float]:
        return self.x_train.mean(axis=0).tolist()

    @property
    def feature_std(self) -> list[float]:
        return self.x_train.std(axis=0).tolist()


def load_training_data(config: TrainJobConfig) -> TrainingData:
    loader = import_object(config.data.loader)
    data = loader(**config.data.loader_kwargs(config.storage))
    if not isinstance(data, TrainingData):
        raise TypeError(f"data.loader {config.data.loader} returned {type(data).__name__}, expected TrainingData")
    if data.frame.empty:
        raise ValueError(f"data.loader {config.data.loader} returned no rows")
    return data


def split(data: TrainingData, validation_fraction: float, seed: int, task: str) -> PreparedData:
    frame = data.frame.dropna(subset=[*data.feature_names, data.label])
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = max(1, int(round(len(frame) * (1 - validation_fraction))))
    x = frame[data.feature_names].to_numpy(np.float32)
    label_dtype = np.int64 if task == "classification" else np.float32
    y = frame[data.label].to_numpy(label_dtype)
    train, val = order[:cut], order[cut:]
    return PreparedData(x[train], y[train], x[val], y[val], list(data.feature_names), dict(data.tags))


def model_spec(config: TrainJobConfig, data: PreparedData) -> ModelSpec:
    """The factory's kwargs completed from the data: input size, feature statistics, classes.

    Only keywords the factory accepts are filled in, and the config wins over the data.
    """
    factory = import_object(config.model.factory)
    accepted = inspect.signature(factory).parameters
    derived: dict[str, Any] = {
        "input_dim": len(data.feature_names),
        "feature_mean": data.feature_mean,
        "feature_std": data.feature_std,
    }
    if config.model.task == "classification":
        derived["output_dim"] = int(max(data.y_train.max(initial=0), data.y_val.max(initial=0))) + 1
    else:
        derived["output_dim"] = 1
    kwargs = {k: v for k, v in derived.items() if k in accepted} | dict(config.model.kwargs)
    return ModelSpec(
        factory=config.model.factory,
        kwargs=kwargs,
        feature_names=data.feature_names,
        task=config.model.task,
        metadata={"run_name": config.run_name, **data.tags},
    )
