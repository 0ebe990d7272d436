"""Typed configs: one pydantic model per config file, loaded with overrides.

| file                        | model               | module                          |
|-----------------------------|---------------------|---------------------------------|
| configs/training.yaml       | TrainingJobConfig   | mlray/config/training.py        |
| configs/or_tools.yaml       | OrToolsJobConfig    | mlray/config/or_tools.py        |
| configs/inference.yaml      | InferenceConfig     | mlray/config/inference.py       |
| configs/preprocessing.yaml  | PreprocessingConfig | mlray/config/preprocessing.py   |
| configs/batch_inference.yaml | BatchInferenceConfig | mlray/config/batch_inference.py |

Sections shared by several files live in ``mlray/config/sections.py``.
"""

from mlray.config.base import ConfigModel
from mlray.config.batch_inference import BatchInferenceConfig
from mlray.config.loader import ConfigError, load_config
from mlray.config.inference import InferenceConfig
from mlray.config.or_tools import OrToolsJobConfig
from mlray.config.preprocessing import PreprocessingConfig
from mlray.config.training import TrainingJobConfig

__all__ = [
    "BatchInferenceConfig",
    "ConfigError",
    "ConfigModel",
    "InferenceConfig",
    "OrToolsJobConfig",
    "PreprocessingConfig",
    "TrainingJobConfig",
    "load_config",
]
