"""A toy job, whole in this file: its config model and its ``main``. One line registers it:
``register(Job("toy", "toy.yaml", ToyJobConfig, "tests.config.toy_job:main"))``."""

from __future__ import annotations

from typing import Any

from pydantic import PositiveInt

from mlray.config.base import ConfigModel
from mlray.config.sections import StorageConfig


class ToyJobConfig(ConfigModel):
    """Say a word a few times."""

    storage: StorageConfig = StorageConfig()
    word: str = "hello"
    times: PositiveInt = 2


def main(config: ToyJobConfig) -> dict[str, Any]:
    return {"status": "ok", "said": [config.word] * config.times}
