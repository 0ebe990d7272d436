"""Distributed training on Ray Train: ``python -m jobs.train --config configs/train.yaml``."""

from __future__ import annotations

from typing import Any

from mlray.config import TrainJobConfig
from mlray.entrypoint import print_summary, run_registered


def main(config: TrainJobConfig) -> dict[str, Any]:
    from mlray.train import run_training

    # Workers that outlive the grace period after SIGTERM: the summary line before the process exits.
    return run_training(config, on_forced_exit=print_summary)


if __name__ == "__main__":
    run_registered("train")
