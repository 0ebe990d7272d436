"""Batch inference: Parquet in, predictions out, with Ray Data ``map_batches`` over model actors.

Rows go through the same ``predict_outputs`` as the online route, so a row
gets the same label and probabilities offline and online. Classification
adds ``label`` and ``probabilities`` columns; regression adds ``prediction``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import torch
from ray.data import SaveMode

from mlray.cluster.runtime import init_ray
from mlray.config.batch_predict import BatchPredictJobConfig
from mlray.models.bundle import default_policy
from mlray.models.trust import LoadPolicy
from mlray.serve.prediction.versions import LoadedModel, load_model_version
from mlray.storage import Storage

log = logging.getLogger(__name__)


class BatchPredictor:
    """One per Ray Data actor: loads the model once, predicts pandas batches."""

    def __init__(self, model_uri: str, feature_names: list[str] | None, mlflow_tracking_uri: str | None,
                 policy: LoadPolicy):
        self.model = load_model_version("batch", model_uri, policy=policy,
                                        mlflow_tracking_uri=mlflow_tracking_uri, feature_names=feature_names)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return add_predictions(self.model, batch)


def add_predictions(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    rows = torch.tensor(frame[model.feature_names].to_numpy(dtype="float32"))
    predictions = model.predict(rows)
    out = frame.copy()
    if model.task == "regression":
        out["prediction"] = predictions
    else:
        out["label"] = [p["label"] for p in predictions]
        out["probabilities"] = [p["probabilities"] for p in predictions]
    return out


def input_columns(storage: Storage) -> list[str]:
    """Column names of a Parquet file or folder, read from metadata only."""
    if not storage.fs.exists(storage.path()):
        raise FileNotFoundError(f"batch.input_uri: {storage.url()} does not exist")
    dataset = pq.ParquetDataset(storage.path(), filesystem=storage.pyarrow_fs)
    return list(dataset.schema.names)


def run_batch_inference(config: BatchPredictJobConfig) -> dict[str, Any]:
    import ray

    batch = config.batch
    locate = config.storage.location
    source, target = Storage(locate(batch.input_uri)), Storage(locate(batch.output_uri))
    model_uri = locate(batch.model_uri)
    tracking_uri = config.mlflow.tracking_uri
    # The job's own config names the model, so any location; its factory still has to be on the allowlist.
    policy = default_policy()
    # Check the model and the input's columns here, before any cluster work.
    model = load_model_version("batch", model_uri, policy=policy, mlflow_tracking_uri=tracking_uri,
                               feature_names=batch.feature_names)
    missing = sorted(set(model.feature_names) - set(input_columns(source)))
    if missing:
        raise ValueError(f"batch.input_uri: {source.url()} lacks model input columns {missing}")

    init_ray(config.ray)
    predictions = ray.data.read_parquet(source.path(), filesystem=source.pyarrow_fs).map_batches(
        BatchPredictor,
        fn_constructor_kwargs={
            "model_uri": model_uri,
            "feature_names": model.feature_names,
            "mlflow_tracking_uri": tracking_uri,
            "policy": policy,
        },
        batch_size=batch.batch_size,
        batch_format="pandas",
        # min 1: starts on what a busy cluster has free (a Serve app may hold CPUs), grows to concurrency
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=batch.concurrency),
        num_cpus=batch.num_cpus_per_actor,
    ).materialize()
    rows = predictions.count()
    # A rerun replaces the folder: appending would mix two runs' predictions.
    predictions.write_parquet(target.path(), filesystem=target.pyarrow_fs, mode=SaveMode.OVERWRITE)
    log.info("wrote %d predictions to %s", rows, target.url())
    return {"status": "ok", "rows": rows, "model_uri": model_uri, "output_uri": target.url()}
