"""Loading one model version (bundle or MLflow registry) and turning outputs into predictions.

Online serving and batch inference both go through ``predict_outputs`` so that
the two give the same numbers for the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from mlray.models import load_bundle

MLFLOW_SCHEME = "models:/"
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class LoadedModel:
    version: str
    uri: str
    model: nn.Module
    feature_names: list[str]
    task: Task

    def predict(self, rows: torch.Tensor) -> list[Any]:
        return predict_outputs(self.model, rows, self.task)


def is_mlflow_uri(uri: str) -> bool:
    return uri.startswith(MLFLOW_SCHEME)


def load_model_version(
    version: str,
    uri: str,
    *,
    mlflow_tracking_uri: str | None = None,
    feature_names: list[str] | None = None,
) -> LoadedModel:
    """A model in eval mode with the input columns it expects.

    Bundles carry their feature names; MLflow models take them from their
    signature, else from ``feature_names``.
    """
    if not is_mlflow_uri(uri):
        model, spec = load_bundle(uri)
        return LoadedModel(version, uri, model, list(spec.feature_names), spec.task)
    import mlflow
    import mlflow.pytorch

    if mlflow_tracking_uri:
        mlflow.set_tracking_uri(mlflow_tracking_uri)
    model = mlflow.pytorch.load_model(uri, map_location="cpu")
    model.eval()
    names = _signature_inputs(uri) or feature_names
    if not names:
        raise ValueError(
            f"model {uri!r} has no input signature: set models.feature_names (or batch.feature_names)"
        )
    return LoadedModel(version, uri, model, list(names), _mlflow_task(uri))


def _signature_inputs(uri: str) -> list[str] | None:
    from mlflow.models import get_model_info

    signature = get_model_info(uri).signature
    if signature is None or signature.inputs is None:
        return None
    names = signature.inputs.input_names()
    # A tensor signature has no column names; only named columns say which feature is which.
    return [str(n) for n in names] if names and all(isinstance(n, str) for n in names) else None


def _mlflow_task(uri: str) -> Task:
    from mlflow.models import get_model_info

    task = (get_model_info(uri).metadata or {}).get("task", "classification")
    return "regression" if task == "regression" else "classification"


def predict_outputs(model: nn.Module, rows: torch.Tensor, task: Task) -> list[Any]:
    """Per row: ``{"label", "probabilities"}`` for classification, a float for regression."""
    with torch.inference_mode():
        outputs = model(rows)
    if task == "regression":
        return outputs.reshape(len(rows), -1)[:, 0].tolist()
    probabilities = torch.softmax(outputs, dim=-1)
    labels = probabilities.argmax(dim=-1)
    return [
        {"label": int(label), "probabilities": probs}
        for label, probs in zip(labels.tolist(), probabilities.tolist(), strict=True)
    ]
