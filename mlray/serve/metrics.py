"""Prometheus metrics through Ray's metrics export (``ray.serve.metrics``).

Ray adds the deployment, replica and application tags and exports everything
at each node's metrics endpoint (scraped by Prometheus, shown in the Ray
dashboard), named ``ray_<name>``: for example ``ray_mlray_serve_batch_size_bucket``.
"""

from __future__ import annotations

from typing import Any, get_args

from mlray.serve.canary import RolloutState, Status

LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


class _Disabled:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class ServeMetrics:
    """What an ingress replica records: requests, errors, latency and batch sizes per version."""

    def __init__(self, enabled: bool = True):
        if not enabled:
            self.requests = self.errors = self.latency = self.batch_size = _Disabled()
            return
        from ray.serve.metrics import Counter, Histogram

        self.requests = Counter(
            "mlray_serve_requests", description="Prediction requests by version and status code.",
            tag_keys=("version", "code"),
        )
        self.errors = Counter(
            "mlray_serve_errors", description="Failed prediction requests by version and kind.",
            tag_keys=("version", "kind"),
        )
        self.latency = Histogram(
            "mlray_serve_latency_ms", description="Prediction latency inside the replica.",
            boundaries=LATENCY_BUCKETS_MS, tag_keys=("version",),
        )
        self.batch_size = Histogram(
            "mlray_serve_batch_size", description="Requests per model call.",
            boundaries=BATCH_SIZE_BUCKETS, tag_keys=("version",),
        )

    def request(self, version: str, code: int, latency_ms: float) -> None:
        self.requests.inc(tags={"version": version, "code": str(code)})
        self.latency.observe(latency_ms, tags={"version": version})
        if code >= 500:
            self.errors.inc(tags={"version": version, "kind": "server"})

    def batch(self, version: str, size: int) -> None:
        self.batch_size.observe(size, tags={"version": version})


class RolloutMetrics:
    """Canary weight and rollout status, set by the rollout controller."""

    def __init__(self, enabled: bool = True):
        if not enabled:
            self.weight = self.status = _Disabled()
            return
        from ray.serve.metrics import Gauge

        self.weight = Gauge(
            "mlray_serve_canary_weight", description="Traffic share of the canary version.", tag_keys=("canary",)
        )
        self.status = Gauge(
            "mlray_serve_rollout_status", description="1 for the current rollout status.", tag_keys=("status",)
        )

    def publish(self, state: RolloutState) -> None:
        self.weight.set(state.canary_weight, tags={"canary": state.canary or "none"})
        for status in get_args(Status):
            self.status.set(1.0 if status == state.status else 0.0, tags={"status": status})
