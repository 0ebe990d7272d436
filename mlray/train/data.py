"""What a training data loader returns.

A use case names its loader in ``configs/train.yaml``::

    data:
      loader: mlray.train.loaders:parquet_frame      # any package.module:function
      kwargs: {path: data/processed/training.parquet}

The function is called as ``loader(**kwargs)`` and returns ``TrainingData``.
``tags`` are recorded with the MLflow run (for example the feature service a
frame came from), so a run says where its data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class TrainingData:
    frame: pd.DataFrame
    feature_names: list[str]
    label: str
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in [*self.feature_names, self.label] if c not in self.frame.columns]
        if missing:
            raise ValueError(f"training data: columns {missing} missing; have {list(self.frame.columns)}")
