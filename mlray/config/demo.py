"""Model of configs/demo.yaml: which configs the end-to-end demo runs, and its overrides."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from mlray.config.base import ConfigModel, Fraction, PositiveFloat, PositiveInt


def _instance_file(reference: str) -> str:
    from mlray.optimize import instances

    return str(instances.resolve(reference))


InstanceFile = Annotated[
    str,
    AfterValidator(_instance_file),
    Field(description="A problem file, or a shipped instance by name ('jsp/ft06', 'cvrp/E-n13-k4.vrp')."),
]


class DemoConfig(ConfigModel):
    bucket: str = Field(default="mlray-demo", description="Bucket on the local GCS emulator for checkpoints.")
    use_gcs_emulator: bool = True
    num_cpus: PositiveInt = Field(default=4, description="Logical CPUs of the demo's local Ray cluster.")
    output_dir: str = Field(default="runs/demo", description="Where the demo writes its inputs, predictions and MLflow store.")
    preprocess_config: str = "configs/preprocess.yaml"
    features_config: str = "configs/features.yaml"
    train_config: str = "configs/train.yaml"
    training_overrides: list[str] = Field(default_factory=list)
    optimize_config: str = "configs/optimize.yaml"
    routing_instance: InstanceFile = "cvrp/E-n13-k4.vrp"
    scheduling_instance: InstanceFile = "jsp/ft06"
    solve_time_limit: PositiveFloat = 8
    inference_config: str = "configs/inference.yaml"
    canary_weight: Fraction = 0.2
    num_queries: PositiveInt = Field(default=1000, description="Queries in the burst against the Serve app.")
    entity_key_share: Fraction = Field(
        default=0.25, description="Share of queries that send only entity keys, enriched from the online store."
    )
    query_concurrency: PositiveInt = 16
    batch_predict_config: str = "configs/batch_predict.yaml"
    batch_rows: PositiveInt = Field(
        default=200, description="Rows of the batch-inference input, each also sent online to compare predictions."
    )
