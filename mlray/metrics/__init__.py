"""Metrics of every workload, in one place: one module per workload, each with its ``MetricSpec``s
(``ALL``) and the small recorder its workload calls. ``monitoring.enable_metrics`` switches them.

The dashboards (``mlray.metrics.dashboards``) and alert rules (``mlray.kuberay.alerts``) are built
from these specs, and the tests check every series they use against a live cluster's export.
"""

from __future__ import annotations

from mlray.metrics import features, optimize, serve, train
from mlray.metrics.base import MetricSpec

ALL: tuple[MetricSpec, ...] = (*train.ALL, *optimize.ALL, *features.ALL, *serve.ALL)
