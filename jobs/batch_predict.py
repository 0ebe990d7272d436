"""Batch inference with Ray Data: ``python -m jobs.batch_predict --config configs/batch_predict.yaml``."""

from __future__ import annotations

from typing import Any

from mlray.config import BatchPredictJobConfig
from mlray.entrypoint import run_registered


def main(config: BatchPredictJobConfig) -> dict[str, Any]:
    from mlray.serve.offline.batch import run_batch_inference

    return run_batch_inference(config)


if __name__ == "__main__":
    run_registered("batch-predict")
