"""Tidy one training run's storage by hand: ``python -m mlray.train.tidy --config configs/train.yaml``.

Removes ``.tmp-*`` objects unchanged for ``storage.stale_temp_after_s`` and the
checkpoint folders Ray Train never registered under ``storage.uri/run_name``;
training does the same at its start and end. Registered checkpoints stay.
"""

from __future__ import annotations

from typing import Any

from mlray.config import TrainJobConfig
from mlray.entrypoint import run_job
from mlray.storage import Storage
from mlray.train.checkpoint import tidy_run_storage


def main(config: TrainJobConfig) -> dict[str, Any]:
    run_storage = Storage(config.storage.uri).child(config.run_name)
    return {"status": "ok", "run_storage": run_storage.url(),
            **tidy_run_storage(run_storage, config.storage.stale_temp_after_s)}


if __name__ == "__main__":
    run_job("tidy", TrainJobConfig, main)
