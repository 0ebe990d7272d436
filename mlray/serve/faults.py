"""A model factory that injects latency and errors: the regressions that canary tests and bench/chaos.py roll out.

``faulty_mlp`` wraps the default MLP (``mlray.models.mlp.build_mlp``): each call first waits ``delay_ms`` and then
fails with probability ``error_rate``, so a bundle built with it serves like a real version whose release made it
slower or flakier. It is not under the default ``models.trust.allowed_factories`` (``mlray.models.*``): a config
must name ``mlray.serve.faults:faulty_mlp`` for replicas to load it.
"""

from __future__ import annotations

import random
import time
from typing import Any

import torch
from torch import nn

from mlray.models.mlp import build_mlp

FACTORY = "mlray.serve.faults:faulty_mlp"


class InjectedFault(RuntimeError):
    """The failure a faulty model raises on purpose."""


class FaultyModel(nn.Module):
    def __init__(self, inner: nn.Module, delay_ms: float, error_rate: float):
        super().__init__()
        if delay_ms < 0 or not 0 <= error_rate <= 1:
            raise ValueError(f"expected delay_ms >= 0 and error_rate in [0, 1], got {delay_ms}, {error_rate}")
        self.inner = inner
        self.delay_s = delay_ms / 1000
        self.error_rate = error_rate
        self._rng = random.Random()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.delay_s:
            time.sleep(self.delay_s)  # stands for slower compute: the caller runs it off the event loop
        if self._rng.random() < self.error_rate:
            raise InjectedFault(f"injected fault (error_rate {self.error_rate})")
        return self.inner(x)


def faulty_mlp(delay_ms: float = 0.0, error_rate: float = 0.0, **mlp_kwargs: Any) -> nn.Module:
    """``build_mlp(**mlp_kwargs)`` whose every call waits ``delay_ms`` and fails with probability ``error_rate``."""
    return FaultyModel(build_mlp(**mlp_kwargs), delay_ms, error_rate)
