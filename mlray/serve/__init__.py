"""Online and batch inference on Ray Serve and Ray Data, by concern.

* ``app``: ``build_application(config)`` turns an ``InferenceConfig`` into a Serve application
  (``serve_apps`` exposes it for ``serve run``): the entry point.
* ``api``: the HTTP layer (FastAPI ingress and its guard, API keys, request and response bodies, a client).
* ``rollout``: canary rollouts (state machine, controller deployment, a replica's client, the stored state).
* ``prediction``: the two prediction deployments (batched, sync) and what they share, the call coalescer,
  model versions, feature enrichment, prediction logging.
* ``offline``: batch inference, the Ray Data job behind ``jobs/batch_predict.py`` (``run_batch_inference``).
* ``cluster_env``: the Ray environment of the serving setup (HAProxy mode), read by ``mlray.process_env``.

See docs/serving.md. The names below are imported on first use, so that importing a light submodule
(``mlray.serve.cluster_env``, which the KubeRay renderer needs) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlray.serve.prediction.features import FeatureEnricher, UnknownEntityError
    from mlray.serve.prediction.versions import LoadedModel, load_model_version, predict_outputs

_EXPORTS = {
    "FeatureEnricher": "mlray.serve.prediction.features",
    "UnknownEntityError": "mlray.serve.prediction.features",
    "LoadedModel": "mlray.serve.prediction.versions",
    "load_model_version": "mlray.serve.prediction.versions",
    "predict_outputs": "mlray.serve.prediction.versions",
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
