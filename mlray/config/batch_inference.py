"""Model of configs/batch_inference.yaml: offline predictions with Ray Data."""

from __future__ import annotations

from pydantic import Field

from mlray.config.base import ConfigModel, PositiveFloat, PositiveInt
from mlray.config.sections import MlflowConfig, MonitoringConfig, RayConfig, StorageUri


class BatchSection(ConfigModel):
    input_uri: StorageUri = Field(
        default="data/processed/training.parquet", description="Parquet file or folder."
    )
    output_uri: StorageUri = Field(
        default="runs/predictions", description="Folder for the output Parquet files."
    )
    model_uri: str = Field(default="runs/storage/mlray-train/model", description="Bundle folder or models:/ URI.")
    feature_names: list[str] | None = Field(
        default=None, description="Input columns of MLflow models without a signature."
    )
    batch_size: PositiveInt = Field(default=1024, description="Rows per map_batches call.")
    concurrency: PositiveInt = Field(default=2, description="Most model actors in the pool (it starts with one).")
    num_cpus_per_actor: PositiveFloat = 1.0


class BatchInferenceConfig(ConfigModel):
    batch: BatchSection = BatchSection()
    ray: RayConfig = RayConfig()
    mlflow: MlflowConfig = MlflowConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
