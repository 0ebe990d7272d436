"""Feature metrics: what materialization moved online, and how fresh and fast the online lookups are."""

from __future__ import annotations

from typing import Any

from mlray.metrics.base import SECONDS_BUCKETS, MetricSpec, Recorder

ROWS = MetricSpec(
    "mlray_features_rows_materialized", "counter", "Source rows a materialization moved online.", ("view",)
)
LAG = MetricSpec(
    "mlray_features_materialization_lag_seconds", "gauge",
    "At the end of a materialization: its end time minus the newest feature timestamp now online.", ("view",),
)
LOOKUP = MetricSpec(
    "mlray_features_online_lookup_duration_seconds", "histogram",
    "One online feature lookup (a request's rows).",
    ("feature_service",), SECONDS_BUCKETS,
)
SERVED_AGE = MetricSpec(
    "mlray_features_served_age_seconds", "gauge",
    "Age of the oldest stored feature in the last online lookup (now minus its event timestamp).",
    ("feature_service",),
)
TTL = MetricSpec(
    "mlray_features_ttl_seconds", "gauge", "Shortest TTL of the feature views a feature service reads.",
    ("feature_service",),
)

ALL = (ROWS, LAG, LOOKUP, SERVED_AGE, TTL)


class MaterializeMetrics(Recorder):
    def view(self, view: str, rows: int | None, lag_seconds: float | None) -> None:
        self.inc(ROWS, rows or 0, view=view)
        self.set(LAG, lag_seconds, view=view)


class OnlineFeatureMetrics(Recorder):
    def __init__(self, enabled: bool, feature_service: str, ttl_seconds: float | None):
        super().__init__(enabled, feature_service=feature_service)
        self.ttl_seconds = ttl_seconds

    def lookup(self, seconds: float, ages: list[float]) -> None:
        self.observe(LOOKUP, seconds)
        self.set(TTL, self.ttl_seconds)  # with each age: Ray drops a gauge that is not set again
        if ages:
            self.set(SERVED_AGE, max(ages))


def service_ttl_seconds(store: Any, service: Any) -> float | None:
    """The shortest TTL of the stored feature views a Feast feature service reads; None when none has one."""
    names = {projection.name for projection in service.feature_view_projections}
    views = [view for view in store.list_feature_views() if view.name in names]
    ttls = [view.ttl.total_seconds() for view in views if view.ttl]
    return min(ttls, default=None)
