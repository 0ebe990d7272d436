"""Serving metrics through Serve's metrics API (``ray.serve.metrics``), which adds the deployment,
replica and application labels: requests, errors and latency by version and role (stable or canary),
batch sizes, and the rollout's state."""

from __future__ import annotations

from typing import Any, get_args

from mlray.metrics.base import SECONDS_BUCKETS, MetricSpec, Recorder

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
ROLES = ("stable", "canary", "pinned")  # pinned: a version other than both, asked for by header
BY_VERSION = ("version", "role")

REQUESTS = MetricSpec(
    "mlray_serve_requests", "counter", "Prediction requests by version, role and status code.",
    (*BY_VERSION, "code"), serve=True,
)
ERRORS = MetricSpec(
    "mlray_serve_errors", "counter", "Failed prediction requests by version, role and kind.",
    (*BY_VERSION, "kind"), serve=True,
)
LATENCY = MetricSpec(
    "mlray_serve_request_duration_seconds", "histogram", "Prediction latency inside the replica.",
    BY_VERSION, SECONDS_BUCKETS, serve=True,
)
FALLBACKS = MetricSpec(
    "mlray_serve_canary_fallbacks", "counter",
    "Predictions the canary failed with a server error and that were tried again on stable, by canary version.",
    ("version",), serve=True,
)
BATCH_SIZE = MetricSpec(
    "mlray_serve_batch_size", "histogram", "Requests per model call.", ("version",), BATCH_SIZE_BUCKETS,
    serve=True,
)
CANARY_WEIGHT = MetricSpec(
    "mlray_serve_canary_weight", "gauge", "Traffic share of the canary version (0 to 1).", ("canary",),
    serve=True,
)
ROLLOUT_STATUS = MetricSpec(
    "mlray_serve_rollout_status", "gauge", "1 for the rollout's current status, 0 for the others.",
    ("status",),
    serve=True,
)

ALL = (REQUESTS, ERRORS, LATENCY, FALLBACKS, BATCH_SIZE, CANARY_WEIGHT, ROLLOUT_STATUS)


def role_of(state: Any, version: str) -> str:
    """``stable``, ``canary`` or ``pinned``: bounded, unlike version names over a long life."""
    if version == state.canary:
        return "canary"
    return "stable" if version == state.stable else "pinned"


class ServeMetrics(Recorder):
    """What an ingress replica records per request and per model call."""

    def request(self, version: str, code: int, latency_ms: float, state: Any = None) -> None:
        role = role_of(state, version) if state is not None else "stable"
        self.inc(REQUESTS, version=version, role=role, code=str(code))
        self.observe(LATENCY, latency_ms / 1000, version=version, role=role)
        if code >= 500:
            self.inc(ERRORS, version=version, role=role, kind="server")

    def fallback(self, canary: str) -> None:
        """The canary's failed attempt is in ``request`` (its own code and role); this counts the retry."""
        self.inc(FALLBACKS, version=canary)

    def batch(self, version: str, size: int) -> None:
        self.observe(BATCH_SIZE, size, version=version)


class RolloutMetrics(Recorder):
    """Canary weight and rollout status, set by the rollout controller."""

    def publish(self, state: Any) -> None:
        from mlray.serve.rollout.canary import Status

        self.set(CANARY_WEIGHT, state.canary_weight, canary=state.canary or "none")
        for status in get_args(Status):
            self.set(ROLLOUT_STATUS, 1.0 if status == state.status else 0.0, status=status)
