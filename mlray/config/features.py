"""Model of configs/features.yaml: the Feast feature store and its materialization.

The Feast repository (definitions and ``feature_store*.yaml``) is configuration shipped with the
project and the image: a relative ``repo.path`` is found beside the config file that names it. The
data (``sources.location``) and the store's state (``repo.state_dir``: registry, SQLite online
store) are job inputs and outputs: relative ones lie under ``storage.uri``, like every job's.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo

from mlray.config.base import ConfigModel
from mlray.config.loader import CONFIG_DIR
from mlray.config.sections import UNDER_STORAGE, Location, MonitoringConfig, RayConfig, StorageConfig

DEFAULT_CONFIG_DIR = "configs"


def beside_config_file(value: str, info: ValidationInfo) -> str:
    """A relative folder named by a config file, made absolute against that file's folder."""
    if os.path.isabs(value) or "://" in value:
        return value
    base = (info.context or {}).get(CONFIG_DIR) or os.path.abspath(DEFAULT_CONFIG_DIR)
    return os.path.normpath(os.path.join(base, value))


class FeatureRepoSection(ConfigModel):
    """Which Feast repository, and which of its ``feature_store*.yaml`` files, to use."""

    path: Annotated[str, AfterValidator(beside_config_file)] = Field(
        default="feature_store",
        description="The Feast repository folder. A relative path is relative to the folder of the config "
        "file that sets it (configs/ for configs/features.yaml; configs/ under the working directory for a "
        "config built without a file), never to the working directory alone.",
    )
    store_yaml: str = Field(
        default="feature_store.yaml",
        description="File in the repository: feature_store.yaml (local) or feature_store.gcp.yaml (GCP).",
    )
    state_dir: Location | None = Field(
        default="feature_store",
        description="Where the registry and the SQLite online store go, instead of the paths in store_yaml "
        "(remote ones there, gs:// or Datastore, are kept). The SQLite online store needs a local folder: "
        "with a gs:// storage.uri, set an absolute local path or use feature_store.gcp.yaml. null: the "
        "paths in store_yaml." + UNDER_STORAGE,
    )


class FeatureSourcesSection(ConfigModel):
    """Where the feature views read their rows (what jobs/preprocess.py writes)."""

    kind: Literal["file", "bigquery"] = Field(
        default="file", description="file: Parquet files in a folder; bigquery: tables in a dataset."
    )
    location: str = Field(
        default="data/processed",
        description="file: the folder (what jobs.preprocess writes; a relative path lies under storage.uri, "
        "an absolute path or gs:// URI is taken as is); bigquery: 'project.dataset'. $VARS are expanded.",
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
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
