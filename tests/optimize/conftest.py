"""Instances shipped in mlray/optimize/instances/ and a config builder with short limits for real solves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlray.config.loader import set_dotted
from mlray.config.optimize import OptimizeJobConfig
from mlray.optimize import instances


@pytest.fixture
def instance():
    """``instance("jsp/ft06")`` -> path of a shipped instance file (ValueError if none is shipped)."""
    return instances.path


@pytest.fixture
def make_config(tmp_path: Path):
    """A config writing under tmp_path, MLflow off unless asked; overrides as dotted keys."""

    def build(**overrides: Any) -> OptimizeJobConfig:
        tree: dict[str, Any] = {
            "run_name": "test",
            "storage": {"uri": str(tmp_path / "storage")},
            "output": {"dir": str(tmp_path / "out")},
            "mlflow": {"enabled": False},
            "solver": {"time_limit": 10, "poll_interval": 0.1},
        }
        for key, value in overrides.items():
            set_dotted(tree, key.replace("__", "."), value)
        return OptimizeJobConfig.model_validate(tree)

    return build
