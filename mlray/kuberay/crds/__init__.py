"""The CustomResourceDefinitions that ``python -m mlray.kuberay validate`` checks manifests against.

Shipped with the package (origin and licence in SOURCES.md beside this file), so validation works
from an installed wheel with no download: ``kuberay/`` holds KubeRay v1.7.0's RayCluster, RayJob and
RayService, ``monitoring/`` prometheus-operator's PodMonitor and ServiceMonitor.
"""

from __future__ import annotations

from pathlib import Path

CRDS_ROOT = Path(__file__).resolve().parent
KUBERAY = CRDS_ROOT / "kuberay"
MONITORING = CRDS_ROOT / "monitoring"


def directories() -> list[Path]:
    """The shipped CRD folders, in the order validation reads them."""
    return [KUBERAY, MONITORING]
