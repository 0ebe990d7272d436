"""Model of configs/demo.yaml: which configs the end-to-end demo runs, and its overrides."""

from __future__ import annotations

from pydantic import Field

from mlray.config.base import ConfigModel, Fraction, PositiveFloat, PositiveInt


class DemoConfig(ConfigModel):
    bucket: str = Field(default="mlray-demo", description="Bucket on the local GCS emulator for checkpoints.")
    use_gcs_emulator: bool = True
    num_cpus: PositiveInt = Field(default=4, description="Logical CPUs of the demo's local Ray cluster.")
    preprocessing_config: str = "configs/preprocessing.yaml"
    training_config: str = "configs/training.yaml"
    training_overrides: list[str] = Field(default_factory=list)
    or_tools_config: str = "configs/or_tools.yaml"
    routing_instance: str = "../shared/instances/cvrp/E-n13-k4.vrp"
    scheduling_instance: str = "../shared/instances/jsp/ft06"
    solve_time_limit: PositiveFloat = 8
    inference_config: str = "configs/inference.yaml"
    canary_weight: Fraction = 0.2
    num_queries: PositiveInt = 400
