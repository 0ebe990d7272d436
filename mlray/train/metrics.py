"""Validation metrics by name: built-ins, or any ``package.module:function`` a user names.

A metric is ``fn(outputs, targets) -> float`` over the whole validation set
(all ranks gathered), with ``outputs`` the raw model outputs (logits for
classification) and ``targets`` the labels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mlray.imports import import_object

Metric = Callable[[torch.Tensor, torch.Tensor], float]


def _predicted_classes(outputs: torch.Tensor) -> torch.Tensor:
    return outputs.argmax(dim=1) if outputs.ndim == 2 and outputs.shape[1] > 1 else (outputs.view(-1) > 0).long()


def _binary_counts(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
    predicted = _predicted_classes(outputs)
    positive = targets.long() == 1
    true_positive = float(((predicted == 1) & positive).sum())
    false_positive = float(((predicted == 1) & ~positive).sum())
    false_negative = float(((predicted != 1) & positive).sum())
    return true_positive, false_positive, false_negative


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float((_predicted_classes(outputs) == targets.long()).float().mean())


def precision(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    tp, fp, _ = _binary_counts(outputs, targets)
    return tp / (tp + fp) if tp + fp else 0.0


def recall(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    tp, _, fn = _binary_counts(outputs, targets)
    return tp / (tp + fn) if tp + fn else 0.0


def f1(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """F1 of the positive class (label 1)."""
    tp, fp, fn = _binary_counts(outputs, targets)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _regression_errors(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return outputs.view(-1).float() - targets.view(-1).float()


def mae(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(_regression_errors(outputs, targets).abs().mean())


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(_regression_errors(outputs, targets).pow(2).mean())


def rmse(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return mse(outputs, targets) ** 0.5


BUILTIN: dict[str, Metric] = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "mae": mae,
    "mse": mse,
    "rmse": rmse,
}


def metric_key(name: str) -> str:
    """``f1`` -> ``val_f1``; ``my.pkg:gini`` -> ``val_gini``: the name runs and logs use."""
    return f"val_{name.rpartition(':')[2]}"


def resolve_metrics(names: list[str]) -> dict[str, Metric]:
    """``{val_<name>: function}`` for the configured names."""
    return {metric_key(name): BUILTIN[name] if name in BUILTIN else import_object(name) for name in names}
