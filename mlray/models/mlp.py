"""The default model family: a standardising MLP over tabular features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Standardize(nn.Module):
    """(x - mean) / std with the statistics stored in the model, so serving needs no extra step."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def build_mlp(
    input_dim: int,
    output_dim: int = 2,
    hidden: Sequence[int] = (64, 64),
    dropout: float = 0.0,
    feature_mean: Sequence[float] | None = None,
    feature_std: Sequence[float] | None = None,
) -> nn.Module:
    """Standardize (if statistics are given) -> [Linear -> ReLU -> Dropout]* -> Linear."""
    layers: list[nn.Module] = []
    if feature_mean is not None and feature_std is not None:
        layers.append(Standardize(feature_mean, feature_std))
    width = input_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)
