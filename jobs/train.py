"""Distributed training on Ray Train: ``python -m jobs.train --config configs/training.yaml``."""

from __future__ import annotations

from typing import Any

from mlray.config import TrainingJobConfig
from mlray.entrypoint import run_registered


def main(config: TrainingJobConfig) -> dict[str, Any]:
    from mlray.train import run_training

    return run_training(config)


if __name__ == "__main__":
    run_registered("train")
