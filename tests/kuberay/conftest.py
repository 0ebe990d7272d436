from __future__ import annotations

from pathlib import Path

import pytest

from mlray.config.kuberay import KubeRayConfig
from mlray.config.loader import load_config
from mlray.kuberay import crds
from mlray.kuberay.render import RenderInputs, render
from mlray.kuberay.schemas import SchemaSet, schema_set
from mlray.kuberay.validate import GraceLookup, grace_lookup

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = PROJECT_ROOT / "clusters"


@pytest.fixture(scope="session")
def kuberay_config() -> KubeRayConfig:
    return load_config(KubeRayConfig, PROJECT_ROOT / "configs" / "kuberay.yaml", environ={})


@pytest.fixture(scope="session")
def schemas(kuberay_config: KubeRayConfig) -> SchemaSet:
    return schema_set(kuberay_config.kubernetes_version, crds.directories())


@pytest.fixture(scope="session")
def grace() -> GraceLookup:
    return grace_lookup(PROJECT_ROOT / "configs")


@pytest.fixture(scope="session")
def fresh_render() -> dict[str, str]:
    return render(RenderInputs.from_project(PROJECT_ROOT))
