"""Both launch forms through the real ``serve`` CLI against the session cluster, and ``serve deploy``."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mlray.cluster.local import client_env
from mlray.serve.api.auth import key_id
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


@pytest.mark.slow
@pytest.mark.security
def test_serve_run_under_a_route_prefix_with_keys_in_the_environment(
    serve_url, ray_cluster, bundles, inference_yaml, tmp_path, security_probe
):
    """The issue's setup: shipped config, route_prefix /api, MLRAY_SERVE_API_KEYS and MLRAY_SERVE_ADMIN_KEYS set."""
    predict_key, admin_key = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    keys_env = {"MLRAY_SERVE_API_KEYS": predict_key, "MLRAY_SERVE_ADMIN_KEYS": admin_key}
    config = serve_config_using(inference_yaml, tmp_path, route_prefix="/api", runtime_env={"env_vars": keys_env})
    rows = sample_rows(2, seed=31)
    api = httpx.Client(base_url=f"{serve_url}/api", timeout=10)
    try:
        run_cli("run", "--non-blocking", "--address", ray_cluster.gcs_address, str(config))

        def predicted_with_key() -> httpx.Response | None:
            response = api.post("/v1/predict", json={"instances": rows}, headers={"Authorization": f"Bearer {predict_key}"})
            return response if response.status_code == 200 else None

        predicted = wait_for(predicted_with_key, 120, "the app to answer /api/v1/predict with a prediction key", 0.5)
        assert_same_predictions(predicted.json()["predictions"], expected(bundles, "v1", rows))
        change = {"canary": "v2", "canary_weight": 0.5}
        anonymous = {
            "GET /api/v1/models": api.get("/v1/models"),
            "POST /api/v1/predict": api.post("/v1/predict", json={"instances": rows}),
            "PUT /api/v1/rollout": api.put("/v1/rollout", json=change),
        }
        for response in anonymous.values():
            assert response.status_code == 401, response.text
        as_predictor = api.put("/v1/rollout", json=change, headers={"Authorization": f"Bearer {predict_key}"})
        assert as_predictor.status_code == 403
        assert api.get("/v1/rollout", headers={"Authorization": f"Bearer {predict_key}"}).json()["canary"] is None
        as_admin = api.put("/v1/rollout", json=change, headers={"Authorization": f"Bearer {admin_key}"})
        assert as_admin.status_code == 200 and as_admin.json()["canary"] == "v2"
        assert api.get("/healthz").status_code == 200
    finally:
        api.close()
        stop_app()
    for route, response in anonymous.items():
        security_probe("serving auth", f"serve run, route_prefix /api, keys in env: {route} with no key",
                       "401", f"{response.status_code} {response.text[:100]}")
    security_probe("serving auth", "serve run, route_prefix /api: PUT /api/v1/rollout with a prediction key",
                   "403, rollout unchanged", f"{as_predictor.status_code} {as_predictor.text[:100]}")
    security_probe("serving auth", f"serve run, route_prefix /api: PUT /api/v1/rollout with admin key {key_id(admin_key)}",
                   "200, canary set", f"{as_admin.status_code} canary={as_admin.json()['canary']}")
