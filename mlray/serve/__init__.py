"""Online and batch inference on Ray Serve and Ray Data.

``build_application(config)`` turns an ``InferenceConfig`` into a Serve
application (``serve_apps`` exposes it for ``serve run``); ``run_batch_inference``
is the Ray Data job behind ``jobs/batch_predict.py``. See docs/serving.md.
"""

from mlray.serve.features import FeatureEnricher, UnknownEntityError
from mlray.serve.versions import LoadedModel, load_model_version, predict_outputs

__all__ = [
    "FeatureEnricher",
    "LoadedModel",
    "UnknownEntityError",
    "load_model_version",
    "predict_outputs",
]
