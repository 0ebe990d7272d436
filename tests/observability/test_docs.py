"""docs/observability.md names every metric and alert that ships, and every picture it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.alerts import alert_list
from mlray.metrics import ALL
from mlray.metrics.dashboards import DASHBOARDS

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = (DOCS / "observability.md").read_text()


def test_every_metric_and_alert_is_documented():
    missing = [spec.exported for spec in ALL if f"`{spec.exported}`" not in PAGE]
    alerts = alert_list(KubeRayConfig().monitoring.alerts)
    missing += [alert.name for alert in alerts if f"`{alert.name}`" not in PAGE]
    assert missing == [], "add them to docs/observability.md"


def test_every_dashboard_has_its_picture():
    pictures = set(re.findall(r"\]\((observability/[^)]+\.png)\)", PAGE))
    assert pictures == {f"observability/{dashboard.uid}.png" for dashboard in DASHBOARDS}
    assert all((DOCS / picture).is_file() for picture in pictures)
