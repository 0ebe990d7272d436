"""Serving's metrics live with every workload's in ``mlray.metrics.serve``; imported here for the app."""

from mlray.metrics.serve import RolloutMetrics, ServeMetrics

__all__ = ["RolloutMetrics", "ServeMetrics"]
