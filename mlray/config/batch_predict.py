"""Model of configs/batch_predict.yaml: offline predictions with Ray Data."""

from __future__ import annotations

from pydantic import Field

from mlray.config.base import ConfigModel, PositiveFloat, PositiveInt
from mlray.config.sections import (
    UNDER_STORAGE,
    Location,
    MlflowConfig,
    ModelLocation,
    MonitoringConfig,
    RayConfig,
    StorageConfig,
)


class BatchSection(ConfigModel):
    input_uri: Location = Field(
        default="data/processed/training.parquet", description="Parquet file or folder." + UNDER_STORAGE
    )
    output_uri: Location = Field(
        default="predictions", description="Folder for the output Parquet files." + UNDER_STORAGE
    )
    model_uri: ModelLocation = Field(
        default="mlray-train/model",
        description="Bundle folder (what jobs.train writes to <storage.uri>/<run_name>/model) or models:/ "
        "URI." + UNDER_STORAGE,
    )
    feature_names: list[str] | None = Field(
        default=None, description="Input columns of MLflow models without a signature."
    )
    batch_size: PositiveInt = Field(default=1024, description="Rows per map_batches call.")
    concurrency: PositiveInt = Field(default=2, description="Most model actors in the pool (it starts with one).")
    num_cpus_per_actor: PositiveFloat = 1.0


class BatchPredictJobConfig(ConfigModel):
    batch: BatchSection = BatchSection()
    ray: RayConfig = RayConfig()
    mlflow: MlflowConfig = MlflowConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    storage: StorageConfig = StorageConfig()
