"""Default use-case data as Parquet: ``python -m jobs.preprocess --config configs/preprocess.yaml``."""

from __future__ import annotations

from typing import Any

from mlray.config import PreprocessJobConfig
from mlray.entrypoint import run_registered


def main(config: PreprocessJobConfig) -> dict[str, Any]:
    from mlray.usecases.preprocess import run_preprocessing

    return run_preprocessing(config)


if __name__ == "__main__":
    run_registered("preprocess")
