"""Where a job's inputs and outputs are: one rule for every location field of every config.

A location is a local path or a ``gs://`` URI. A relative one lies under ``storage.uri``, so a
whole pipeline (preprocess -> train -> batch-predict, materialize, optimize) shares one root
whatever the process's working directory: the project folder, Ray's unpacked copy of it under
``ray job submit --working-dir .``, or a pod's read-only app directory. Absolute local paths,
``gs://`` URIs and registered MLflow models (``models:/``) are taken as they are.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

MLFLOW_SCHEME = "models:/"  # a registered model version (mlray.models.trust, mlray.serve.prediction.versions)
LOCATION_EXPECTED = "expected a path (relative ones lie under storage.uri), an absolute path or gs://bucket/path"


def is_mlflow_uri(location: str) -> bool:
    return location.startswith(MLFLOW_SCHEME)


def check_model_location(value: str) -> str:
    """A model's location: a registered MLflow model (``models:/name@alias``) or a location."""
    return value if is_mlflow_uri(value) else check_location(value)


def check_location(value: str) -> str:
    """A config's location field: refuse what no job could read or write (empty, another scheme)."""
    if not value.strip():
        raise ValueError(f"{LOCATION_EXPECTED}, got an empty string")
    scheme = urlsplit(value).scheme
    if scheme and scheme != "gs":
        raise ValueError(f"scheme '{scheme}://' is not supported: {LOCATION_EXPECTED}")
    if scheme == "gs" and not value.startswith("gs://") or value.rstrip("/") == "gs:/":
        raise ValueError(f"scheme 'gs:' must be followed by '//' and a bucket: {LOCATION_EXPECTED}")
    return value


def resolve_location(location: str, storage_uri: str) -> str:
    """``location`` as a URI every process reads alike: relative paths joined under ``storage_uri``."""
    from mlray.storage.filesystem import Storage

    if is_mlflow_uri(location) or "://" in location or os.path.isabs(location):
        return location
    return Storage(storage_uri).url(location)


def local_root(uri: str) -> str:
    """A relative local ``storage.uri`` made absolute against the working directory (once, at config load)."""
    if urlsplit(uri).scheme or os.path.isabs(uri):
        return uri
    return os.path.abspath(os.path.expanduser(uri))
