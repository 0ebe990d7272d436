"""A model factory that injects latency and errors: the regressions that canary tests and bench/chaos.py roll out.

``faulty_mlp`` wraps the default MLP (``mlray.models.mlp.build_mlp``): each call first waits ``delay_ms`` and then
fails with probability ``error_rate``, so a bundle built with it serves like a real version whose release made it
slower or flakier. It is not under the default ``models.trust.allowed_factories`` (``mlray.models.*``): a config
must name ``mlray.serve.faults:faulty_mlp`` for replicas to load it.

``save_regressions`` writes the bundles of a canary-regression drill (a steady stable, a twin of it, a 3x slower
and a 5 %-failing canary) and ``regression_sections`` the models and rollout sections that serve them; the canary
tests and ``bench/chaos_serving.py`` both run the drill from these.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlray.models.mlp import build_mlp

FACTORY = "mlray.serve.faults:faulty_mlp"
STABLE = "steady"


def regressions(stable_delay_ms: float) -> dict[str, tuple[float, float]]:
    """Version name: (delay_ms, error_rate) of each drill bundle; ``steady`` is stable."""
    return {
        STABLE: (stable_delay_ms, 0.0),
        "steady-twin": (stable_delay_ms, 0.0),
        "slower-x3": (3 * stable_delay_ms, 0.0),
        "errors-5pc": (stable_delay_ms, 0.05),
    }


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


def save_regressions(root: str | Path, stable_delay_ms: float, feature_names: list[str], hidden: list[int]) -> None:
    """The drill's bundles under ``root``, one folder per version name (same network, injected faults)."""
    from mlray.models import ModelSpec, save_bundle
    from mlray.storage import Storage

    storage = Storage(str(root))
    for name, (delay_ms, error_rate) in regressions(stable_delay_ms).items():
        kwargs = {"delay_ms": delay_ms, "error_rate": error_rate, "input_dim": len(feature_names),
                  "output_dim": 2, "hidden": hidden}
        save_bundle(faulty_mlp(**kwargs), ModelSpec(FACTORY, kwargs, list(feature_names)), storage, name)


def regression_sections(canary: str, weight: float, **rollout: Any) -> dict[str, dict[str, Any]]:
    """The sync deployment (one model call per request: each version's latency is its own) serving the drill's
    versions, ``canary`` at ``weight``; ``rollout``: other rollout fields, else the config's defaults."""
    return {
        "service": {"mode": "sync"},
        "models": {"versions": {name: name for name in regressions(0.0)}, "stable": STABLE,
                   "trust": {"allowed_factories": ["mlray.models.*", FACTORY]}},
        "rollout": {"canary": canary, "canary_weight": weight, **rollout},
    }
