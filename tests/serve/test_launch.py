"""Both launch forms through the real ``serve`` CLI against the session cluster, and ``serve deploy``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mlray.cluster.local import client_env
from tests.serve.conftest import APP_NAME, assert_same_predictions, base_config, expected, sample_rows, stop_app, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIG = PROJECT_ROOT / "serve_apps" / "config.yaml"
SERVE = str(Path(sys.executable).with_name("serve"))


@pytest.fixture
def inference_yaml(tmp_path: Path, bundles) -> Path:
    """configs/inference.yaml for this test: the test bundles, one replica."""
    path = tmp_path / "inference.yaml"
    path.write_text(yaml.safe_dump(base_config(bundles)))
    return path


def serve_config_using(inference_yaml: Path, tmp_path: Path, **app_fields: Any) -> Path:
    """serve_apps/config.yaml as shipped, with only ``args.config`` pointing at the test's file."""
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    config["applications"][0]["args"]["config"] = str(inference_yaml)
    config["applications"][0].update(app_fields)
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(*args: str, env_extra: dict[str, str] | None = None) -> None:
    env = client_env()
    env.update(env_extra or {})
    result = subprocess.run([SERVE, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def answers_predictions(serve_url: str, bundles) -> None:
    rows = sample_rows(4, seed=21)

    def ready() -> httpx.Response | None:
        response = httpx.post(f"{serve_url}/v1/predict", json={"instances": rows}, timeout=10)
        return response if response.status_code == 200 else None

    response = wait_for(ready, 120, "the app to answer /v1/predict", interval_s=0.5)
    assert response.json()["model_version"] == "v1"
    assert_same_predictions(response.json()["predictions"], expected(bundles, "v1", rows))


def test_shipped_serve_config_is_a_valid_deploy_schema_that_builds():
    from ray.serve.schema import ServeDeploySchema

    import serve_apps

    schema = ServeDeploySchema.model_validate(yaml.safe_load(SERVE_CONFIG.read_text()))
    app = schema.applications[0]
    assert app.import_path == "serve_apps:build" and app.route_prefix == "/"
    assert serve_apps.build(app.args) is not None
    assert serve_apps.config is not None


@pytest.mark.slow
def test_serve_run_import_path(serve_url, ray_cluster, bundles, inference_yaml):
    try:
        run_cli("run", "--non-blocking", "--address", ray_cluster.gcs_address, "--name", APP_NAME,
                "serve_apps.config", env_extra={"MLRAY_INFERENCE_CONFIG": str(inference_yaml)})
        answers_predictions(serve_url, bundles)
    finally:
        stop_app()


@pytest.mark.slow
def test_serve_run_config_file(serve_url, ray_cluster, bundles, inference_yaml, tmp_path):
    try:
        run_cli("run", "--non-blocking", "--address", ray_cluster.gcs_address,
                str(serve_config_using(inference_yaml, tmp_path)))
        answers_predictions(serve_url, bundles)
    finally:
        stop_app()


@pytest.mark.slow
def test_serve_deploy_then_retune_batching_in_place(serve_url, ray_cluster, bundles, inference_yaml, tmp_path):
    def replica() -> str:
        return httpx.get(f"{serve_url}/v1/models", timeout=10).json()["replica"]

    try:
        run_cli("deploy", "--address", ray_cluster.dashboard_url, str(serve_config_using(inference_yaml, tmp_path)))
        answers_predictions(serve_url, bundles)
        before = replica()
        retuned = serve_config_using(
            inference_yaml, tmp_path,
            deployments=[{"name": "PredictionService", "user_config": {"batch_size": 8, "batch_wait_timeout_s": 0.05}}],
        )
        run_cli("deploy", "--address", ray_cluster.dashboard_url, str(retuned))

        def retuned_batching() -> dict[str, Any] | None:
            batching = httpx.get(f"{serve_url}/v1/models", timeout=10).json().get("batching")
            return batching if batching == {"max_batch_size": 8, "batch_wait_timeout_s": 0.05} else None

        wait_for(retuned_batching, 60, "the new batching settings", interval_s=0.5)
        assert replica() == before
        answers_predictions(serve_url, bundles)
    finally:
        stop_app()
