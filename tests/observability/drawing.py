"""Dashboards drawn without Grafana: each panel's own queries sent to a real Prometheus
(``query_range``), the answers plotted with matplotlib, one PNG per dashboard."""

from __future__ import annotations

import math
import re
from pathlib import Path

from mlray.metrics.dashboards import COLUMNS, Dashboard

from .prometheus import Prometheus

LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$run": ".*", "$problem": ".*", "$application": ".*"}


def concrete(expr: str, variables: dict[str, str] = GRAFANA_VARIABLES) -> str:
    """A panel query as Prometheus gets it once Grafana filled in the variables."""
    for variable, value in variables.items():
        expr = expr.replace(variable, value)
    return expr


def draw(dashboard: Dashboard, prometheus: Prometheus, start: float, end: float, path: Path) -> int:
    """The dashboard as a PNG at ``path``; returns how many series its panels drew."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = math.ceil(len(dashboard.panels) / COLUMNS)
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(7 * COLUMNS, 3.2 * rows), squeeze=False)
    drawn = 0
    step = max((end - start) / 300, 1.0)
    for index, ax in enumerate(axes.flat):
        if index >= len(dashboard.panels):
            ax.axis("off")
            continue
        panel = dashboard.panels[index]
        for query in panel.queries:
            for result in prometheus.query_range(concrete(query.expr), start, end, step):
                times = [float(t) - start for t, _ in result["values"]]
                values = [float(v) for _, v in result["values"]]
                labels = result["metric"]
                label = LEGEND_LABEL.sub(lambda m, labels=labels: labels.get(m.group(1), ""), query.legend)
                ax.plot(times, values, label=label.strip() or query.legend, linewidth=1.2)
                drawn += 1
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("seconds into the test run", fontsize=8)
        ax.set_ylabel(panel.unit, fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    figure.suptitle(f"{dashboard.title} (drawn from Prometheus query_range answers)", fontsize=12)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return drawn
