"""Serve entry points for ``serve run`` / ``serve deploy`` and the KubeRay RayService.

* ``serve run serve_apps.config``: ``config`` is the application built from
  configs/inference.yaml (or the file named by ``$MLRAY_INFERENCE_CONFIG``), with
  ``MLRAY_SECTION__FIELD`` environment overrides applied.
* ``serve run serve_apps/config.yaml`` (and ``serve deploy``, and the RayService's
  ``serveConfigV2``): ``import_path: serve_apps:build`` with
  ``args: {config: <file>, set: [dotted.key=value, ...]}``.

Relative paths (the config file, local storage) are taken from the project
root, so the replicas' working directory does not matter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from ray.serve import Application

from mlray.config.inference import InferenceConfig
from mlray.config.loader import load_config
from mlray.serve.app import build_application

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_ENV = "MLRAY_INFERENCE_CONFIG"
DEFAULT_CONFIG = "configs/inference.yaml"


class BuildArgs(BaseModel):
    """``args`` of an application in serve_apps/config.yaml."""

    model_config = ConfigDict(extra="forbid")

    config: str = DEFAULT_CONFIG
    set: list[str] = []


def build(args: dict[str, Any] | BuildArgs) -> Application:
    """The application builder named by serve_apps/config.yaml (``args`` as Serve passes them)."""
    args = BuildArgs.model_validate(args) if isinstance(args, dict) else args
    path = Path(args.config)
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    return build_application(load_config(InferenceConfig, path, args.set), root=PROJECT_ROOT)


config: Application = build(BuildArgs(config=os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)))
