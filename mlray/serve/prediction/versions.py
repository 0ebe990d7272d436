"""Loading one model version (bundle or MLflow registry, never a pickle) and turning outputs into predictions.

Online serving and batch inference both go through ``predict_outputs`` so that
the two give the same numbers for the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from mlray.models.bundle import default_policy, load_bundle
from mlray.models.trust import LoadPolicy
from mlray.storage.locations import is_mlflow_uri

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


def load_model_version(
    version: str,
    uri: str,
    *,
    policy: LoadPolicy | None = None,
    mlflow_tracking_uri: str | None = None,
    feature_names: list[str] | None = None,
) -> LoadedModel:
    """A model in eval mode with the input columns it expects.

    A bundle folder or a registry model logged as one (``mlray.models.mlflow_bundle``),
    both loaded the same way: the location must pass ``policy`` (default:
    allowed factories as configured by default, any location), then its
    factory, then the weights load without unpickling. Input columns come from
    the bundle's spec, else from ``feature_names``.
    """
    policy = policy or default_policy()
    policy.check_location(uri)
    if is_mlflow_uri(uri):
        import mlflow

        from mlray.models.mlflow_bundle import load_bundle_model

        if mlflow_tracking_uri:
            mlflow.set_tracking_uri(mlflow_tracking_uri)
        model, spec = load_bundle_model(uri, policy)
    else:
        model, spec = load_bundle(uri, policy)
    names = spec.feature_names or feature_names
    if not names:
        raise ValueError(
            f"model {uri!r} names no input columns: set models.feature_names (or batch.feature_names)"
        )
    return LoadedModel(version, uri, model, list(names), spec.task)


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
