"""Hyperparameter search with Ray Tune (ASHA): ``python -m jobs.tune --config configs/tune.yaml``."""

from __future__ import annotations

from typing import Any

from mlray.config.tune import TuneJobConfig
from mlray.entrypoint import run_registered


def main(config: TuneJobConfig) -> dict[str, Any]:
    from mlray.train.tune import run_tuning

    return run_tuning(config)


if __name__ == "__main__":
    run_registered("tune")
