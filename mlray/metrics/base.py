"""The definition every workload's metrics share: one ``MetricSpec`` per metric, created through Ray's API.

Ray's metrics agent exports each metric at every node's metrics endpoint as
``ray_<name>`` (counters get ``_total``), with Ray's own labels added
(``SessionName``, ``WorkerId``, ``NodeAddress``...); Prometheus scrapes it and
the Ray dashboard shows it. Label values are bounded: run names, instance
names, arm names, ranks, versions and states, never ids or free text.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["counter", "gauge", "histogram"]

SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0
)


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its name as the code records it, its kind, what it means and its labels."""

    name: str
    kind: Kind
    description: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    serve: bool = False  # through ray.serve.metrics: Serve adds deployment, replica and application

    @property
    def exported(self) -> str:
        """The name Prometheus sees (histograms add ``_bucket``, ``_sum`` and ``_count`` to it)."""
        return f"ray_{self.name}_total" if self.kind == "counter" else f"ray_{self.name}"

    @property
    def series(self) -> tuple[str, ...]:
        """Every series name Prometheus gets from this metric."""
        if self.kind == "histogram":
            return tuple(f"{self.exported}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.exported,)

    def create(self) -> Any:
        return _create(self)


@functools.cache
def _create(spec: MetricSpec) -> Any:
    """One Ray metric object per spec and process: creating it again would register it again."""
    if spec.serve:
        from ray.serve import metrics
    else:
        from ray.util import metrics
    if spec.kind == "histogram":
        return metrics.Histogram(spec.name, description=spec.description, boundaries=list(spec.buckets),
                                 tag_keys=spec.labels)
    factory = metrics.Counter if spec.kind == "counter" else metrics.Gauge
    return factory(spec.name, description=spec.description, tag_keys=spec.labels)


def recording(enabled: bool) -> bool:
    """Whether to record: ``monitoring.enable_metrics`` is on and this process is part of a Ray cluster.

    Outside Ray (a plain process, torchrun, the GPU check) there is no metrics agent to send to.
    """
    if not enabled:
        return False
    import ray

    return ray.is_initialized()


class Recorder:
    """Base of each workload's recorder: ``record(spec, value, **labels)`` when on, nothing when off."""

    def __init__(self, enabled: bool, **labels: str):
        self.enabled = recording(enabled)
        self.labels = labels
        self._gauges: dict[tuple[MetricSpec, tuple[tuple[str, str], ...]], float] = {}
        self._stop_refreshing: threading.Event | None = None

    def _tags(self, spec: MetricSpec, extra: dict[str, str]) -> dict[str, str]:
        tags = {**self.labels, **extra}
        return {key: str(tags[key]) for key in spec.labels}

    def inc(self, spec: MetricSpec, value: float = 1.0, **labels: str) -> None:
        if self.enabled and value > 0:
            spec.create().inc(value, tags=self._tags(spec, labels))

    def start_at_zero(self, spec: MetricSpec, **labels: str) -> None:
        """Export a counter at 0 before its first event, so "none yet" is data (rates and alerts see it)
        rather than a missing series. Ray's ``inc`` refuses 0, its ``_record`` adds 0 to the sum."""
        if self.enabled and spec.kind == "counter":
            spec.create()._record(0.0, tags=self._tags(spec, labels))

    def set(self, spec: MetricSpec, value: float | None, **labels: str) -> None:
        if self.enabled and value is not None:
            tags = self._tags(spec, labels)
            self._gauges[(spec, tuple(sorted(tags.items())))] = float(value)
            spec.create().set(float(value), tags=tags)

    def keep_gauges_alive(self, interval_s: float = 5.0) -> None:
        """Set every gauge again each ``interval_s`` from a daemon thread until ``stop_refreshing()``.

        Ray exports a gauge only for a short while (seconds) after it was last set: a value set once,
        such as the last checkpoint's time, would vanish while it still holds. The thread also runs
        while the main thread hangs, so a hung run still exports that it runs (and takes no steps).
        """
        if not self.enabled or self._stop_refreshing is not None:
            return
        stop = self._stop_refreshing = threading.Event()

        def refresh() -> None:
            while not stop.wait(interval_s):
                for (spec, tags), value in list(self._gauges.items()):
                    spec.create().set(value, tags=dict(tags))

        threading.Thread(target=refresh, name="mlray-metrics-refresh", daemon=True).start()

    def stop_refreshing(self) -> None:
        if self._stop_refreshing is not None:
            self._stop_refreshing.set()

    def observe(self, spec: MetricSpec, value: float, **labels: str) -> None:
        if self.enabled:
            spec.create().observe(value, tags=self._tags(spec, labels))
