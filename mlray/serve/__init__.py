"""Online and batch inference on Ray Serve and Ray Data.

``build_application(config)`` turns an ``InferenceConfig`` into a Serve
application (``serve_apps`` exposes it for ``serve run``); ``run_batch_inference``
is the Ray Data job behind ``jobs/batch_predict.py``. See docs/serving.md.

The names below are imported on first use, so that importing a light submodule
(``mlray.serve.cluster_env``, which the KubeRay renderer needs) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlray.serve.features import FeatureEnricher, UnknownEntityError
    from mlray.serve.versions import LoadedModel, load_model_version, predict_outputs

_EXPORTS = {
    "FeatureEnricher": "mlray.serve.features",
    "UnknownEntityError": "mlray.serve.features",
    "LoadedModel": "mlray.serve.versions",
    "load_model_version": "mlray.serve.versions",
    "predict_outputs": "mlray.serve.versions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if not name.startswith("_"):  # ``mlray.serve.<submodule>`` after a bare ``import mlray.serve``, as before
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
