"""Validate rendered manifests: CRD and Kubernetes schemas first, then mlray's own rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mlray.kuberay import rules
from mlray.kuberay.pods import WORKLOAD_LABEL
from mlray.kuberay.problems import Problem
from mlray.kuberay.schemas import SchemaSet
from mlray.kuberay.workloads import all_job_settings

GraceLookup = Callable[[dict[str, Any]], float]


def grace_lookup(configs_dir: Path) -> GraceLookup:
    """A RayJob's spot groups need its own job's grace; shared clusters the longest of all."""
    by_job = {settings.job.name: settings.grace_period for settings in all_job_settings(configs_dir)}
    longest = max(by_job.values())

    def grace(document: dict[str, Any]) -> float:
        workload = ((document.get("metadata") or {}).get("labels") or {}).get(WORKLOAD_LABEL)
        return by_job.get(workload, longest) if document.get("kind") == "RayJob" else longest

    return grace


def validate_documents(
    documents: Iterable[tuple[str, Any]],
    schemas: SchemaSet,
    checkpoint_grace: GraceLookup,
    spot_notice: float | None = None,
) -> list[Problem]:
    problems: list[Problem] = []
    for source, document in documents:
        found = schemas.validate(document, source)
        # Rules assume a schema-valid shape; report schema problems alone to keep messages clear.
        problems += found or rules.check(document, source, checkpoint_grace, spot_notice)
    return problems
