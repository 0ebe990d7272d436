"""Distributed training on Ray Train: ``python -m jobs.train --config configs/train.yaml``."""

from __future__ import annotations

from typing import Any

from mlray.config import TrainJobConfig
from mlray.entrypoint import run_registered


def main(config: TrainJobConfig) -> dict[str, Any]:
    from mlray.train import run_training

    return run_training(config)


if __name__ == "__main__":
    run_registered("train")
