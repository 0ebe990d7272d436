"""Which model validates which file in ``configs/`` (the reference in docs/configuration.md, tests)."""

from __future__ import annotations

from mlray.config.base import ConfigModel
from mlray.config.demo import DemoConfig
from mlray.config.batch_inference import BatchInferenceConfig
from mlray.config.features import FeaturesConfig
from mlray.config.inference import InferenceConfig
from mlray.config.kuberay import KubeRayConfig
from mlray.config.or_tools import OrToolsJobConfig
from mlray.config.preprocessing import PreprocessingConfig
from mlray.config.training import TrainingJobConfig
from mlray.config.tune import TuneJobConfig

CONFIG_FILES: dict[str, type[ConfigModel]] = {
    "demo.yaml": DemoConfig,
    "training.yaml": TrainingJobConfig,
    "or_tools.yaml": OrToolsJobConfig,
    "inference.yaml": InferenceConfig,
    "preprocessing.yaml": PreprocessingConfig,
    "tune.yaml": TuneJobConfig,
    "features.yaml": FeaturesConfig,
    "features.gcp.yaml": FeaturesConfig,
    "batch_inference.yaml": BatchInferenceConfig,
    "kuberay.yaml": KubeRayConfig,
}


def model_for_file(name: str) -> type[ConfigModel]:
    try:
        return CONFIG_FILES[name]
    except KeyError:
        raise KeyError(f"configs/{name} has no model: add it to mlray/config/registry.py") from None
