"""Requests, errors and latencies of one version: what replicas report and a rollout window judges.

Replicas record into ``VersionFigures`` per request (``mlray.serve.rollout.client``) and send them to the
controller as wire dicts; the rollout (``mlray.serve.rollout.canary``) merges them per window and reads error
rate and percentiles from them. Latencies are kept as samples, at most ``MAX_LATENCY_SAMPLES`` per version
and period.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LATENCY_SAMPLES = 20_000


@dataclass
class VersionFigures:
    """Requests, errors and latencies of one version over some period."""

    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, ok: bool, latency_ms: float) -> None:
        self.requests += 1
        self.errors += 0 if ok else 1
        if len(self.latencies_ms) < MAX_LATENCY_SAMPLES:
            self.latencies_ms.append(latency_ms)

    def merge(self, other: VersionFigures) -> None:
        self.requests += other.requests
        self.errors += other.errors
        room = MAX_LATENCY_SAMPLES - len(self.latencies_ms)
        self.latencies_ms.extend(other.latencies_ms[:room])

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    def summary(self) -> dict[str, Any]:
        p50, p99 = self.percentile_ms(0.5), self.percentile_ms(0.99)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p50_ms": None if p50 is None else round(p50, 2),
            "p99_ms": None if p99 is None else round(p99, 2),
        }

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> VersionFigures:
        return cls(int(data["requests"]), int(data["errors"]), [float(x) for x in data["latencies_ms"]])
