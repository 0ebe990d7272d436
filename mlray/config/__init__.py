"""Typed configs: one pydantic model per config file, loaded with overrides (``load_config``).

Each job's file is ``configs/<job>.yaml`` (the feature store's is ``configs/features.yaml``, which the
materialize job, training's feature loader and serving share), its model ``mlray/config/<job>.py``; the
jobs table (``mlray/config/jobs.py``) ties them together, and ``mlray/config/registry.py`` answers
which model validates which file. Sections shared by several models, and ``JobConfig`` (what every job
with runs carries), live in ``mlray/config/sections.py``.
"""

from mlray.config.base import ConfigModel
from mlray.config.batch_predict import BatchPredictJobConfig
from mlray.config.loader import ConfigError, load_config
from mlray.config.inference import InferenceConfig
from mlray.config.optimize import OptimizeJobConfig
from mlray.config.preprocess import PreprocessJobConfig
from mlray.config.train import TrainJobConfig

__all__ = [
    "BatchPredictJobConfig",
    "ConfigError",
    "ConfigModel",
    "InferenceConfig",
    "OptimizeJobConfig",
    "PreprocessJobConfig",
    "TrainJobConfig",
    "load_config",
]
