"""Default use-case data as Parquet: ``python -m jobs.preprocess --config configs/preprocessing.yaml``."""

from __future__ import annotations

from typing import Any

from mlray.config import PreprocessingConfig
from mlray.entrypoint import run_registered


def main(config: PreprocessingConfig) -> dict[str, Any]:
    from mlray.train.preprocess import run_preprocessing

    return run_preprocessing(config)


if __name__ == "__main__":
    run_registered("preprocess")
