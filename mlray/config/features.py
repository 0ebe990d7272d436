"""Model of configs/features.yaml: the Feast feature store and its materialization.

Relative paths are relative to the working directory (the project root for
``python -m jobs.materialize``), like every other config.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from mlray.config.base import ConfigModel
from mlray.config.sections import MonitoringConfig, RayConfig


class FeatureRepoSection(ConfigModel):
    """Which Feast repository, and which of its ``feature_store*.yaml`` files, to use."""

    path: str = Field(default="configs/feature_store", description="The Feast repository folder.")
    store_yaml: str = Field(
        default="feature_store.yaml",
        description="File in the repository: feature_store.yaml (local) or feature_store.gcp.yaml (GCP).",
    )
    state_dir: str | None = Field(
        default=None,
        description="Puts a local registry and SQLite online store here instead of the paths in store_yaml; "
        "ignored for remote (gs://, Datastore) ones.",
    )


class FeatureSourcesSection(ConfigModel):
    """Where the feature views read their rows (what jobs/preprocess.py writes)."""

    kind: Literal["file", "bigquery"] = Field(
        default="file", description="file: Parquet files in a folder; bigquery: tables in a dataset."
    )
    location: str = Field(
        default="data/processed",
        description="file: the folder (local or gs://); bigquery: 'project.dataset'. $VARS are expanded.",
    )


class MaterializeSection(ConfigModel):
    """What ``python -m jobs.materialize`` does."""

    apply: Literal["if_changed", "always", "never"] = Field(
        default="if_changed", description="Run feast apply first: when the definitions differ from the registry, always, or never."
    )
    end: datetime | None = Field(default=None, description="Materialize up to this time; null = now.")
    first_start: datetime | None = Field(
        default=None,
        description="Start of a view's first materialization (later ones continue where the last ended); "
        "null = the beginning of its data.",
    )
    views: list[str] | None = Field(default=None, description="Feature views to materialize; null = all online ones.")


class FeaturesConfig(ConfigModel):
    repo: FeatureRepoSection = FeatureRepoSection()
    sources: FeatureSourcesSection = FeatureSourcesSection()
    feature_service: str = Field(
        default="driver_trips_v1", description="The feature service that training and serving name."
    )
    materialize: MaterializeSection = MaterializeSection()
    ray: RayConfig = RayConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
