"""End to end on Ray Serve: a request with only entity keys (+ request fields) is predicted
from online features, exactly as the same request with the full feature vector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from mlray.features.materialize import materialize
from mlray.models import ModelSpec, build_mlp, save_bundle
from mlray.storage import Storage
from mlray.storage.emulator import free_port
from mlray.usecases import driver_trips
from tests.features.conftest import FeatureSetup

APP_NAME = "mlray-features"
ROUTE = "/features"
MODEL_FEATURES = driver_trips.FEATURE_COLUMNS


@pytest.fixture(scope="module")
def serve_url(ray_cluster) -> Iterator[str]:
    """Serve's HTTP address: the running instance's, or one started (and stopped) for this module."""
    import ray
    from ray import serve
    from ray.serve.context import _get_global_client

    client = _get_global_client(raise_if_no_controller_running=False)
    started_here = client is None
    if started_here:
        serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
        client = _get_global_client()
    port = ray.get(client._controller.get_http_config.remote()).port
    yield f"http://127.0.0.1:{port}"
    if started_here:
        serve.shutdown()


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundles")
    torch.manual_seed(3)
    kwargs = {"input_dim": 4, "output_dim": 2, "hidden": [16],
              "feature_mean": [0.5, 0.5, 30.0, 8.0], "feature_std": [0.2, 0.2, 15.0, 5.0]}  # fmt: skip
    save_bundle(build_mlp(**kwargs), ModelSpec("mlray.models.mlp:build_mlp", kwargs, list(MODEL_FEATURES)), Storage(str(root)), "v1")
    return root


@pytest.fixture(scope="module")
def client(serve_url: str, feature_setup: FeatureSetup, bundle_root: Path) -> Iterator[httpx.Client]:
    from ray import serve

    from mlray.config.inference import InferenceConfig
    from mlray.serve.app import build_application

    materialize(feature_setup.config)
    config = InferenceConfig.model_validate(
        {
            "app_name": APP_NAME,
            "service": {"min_workers": 1, "max_workers": 1},
            "models": {"versions": {"v1": "v1"}, "stable": "v1"},
            "storage": {"uri": str(bundle_root)},
            "prediction_log": {"sink": None},
            "auth": {"api_keys_file": None},
            "features": {
                "enricher": "mlray.features.online:OnlineFeatureEnricher",
                "kwargs": {"features_config": str(feature_setup.config_path), "feature_names": MODEL_FEATURES},
                "unknown_entity_status": 404,
            },
        }
    )
    serve.run(build_application(config), name=APP_NAME, route_prefix=ROUTE)
    with httpx.Client(base_url=f"{serve_url}{ROUTE}", timeout=60) as http:
        yield http
    serve.delete(APP_NAME)


@pytest.mark.slow
def test_entity_key_requests_get_the_predictions_of_full_vector_requests(client, feature_setup):
    instances = [{"driver_id": 1002, "trip_distance_km": 4.5}, {"driver_id": 1007, "trip_distance_km": 21.0}]
    latest = feature_setup.data.driver_stats.sort_values("event_timestamp").groupby("driver_id").last()
    vectors = [
        [*latest.loc[i["driver_id"], driver_trips.DRIVER_FEATURES].astype(float), i["trip_distance_km"]] for i in instances
    ]
    by_keys = client.post("/v1/predict", json={"instances": instances})
    by_vectors = client.post("/v1/predict", json={"instances": vectors})
    assert by_keys.status_code == 200, by_keys.text
    assert by_vectors.status_code == 200, by_vectors.text
    keyed, direct = by_keys.json()["predictions"], by_vectors.json()["predictions"]
    assert [p["label"] for p in keyed] == [p["label"] for p in direct]
    for k, d in zip(keyed, direct, strict=True):
        assert k["probabilities"] == pytest.approx(d["probabilities"], abs=1e-6)
    freshness = by_keys.json()["metadata"]["features"]
    assert freshness["feature_service"] == "driver_trips_v1"
    assert len(freshness["event_timestamps"]) == len(instances)


@pytest.mark.slow
def test_unknown_entities_get_the_configured_4xx_and_missing_request_fields_a_422(client):
    response = client.post("/v1/predict", json={"instances": [{"driver_id": 4242, "trip_distance_km": 1.0}]})
    assert response.status_code == 404
    assert "driver_id=4242" in response.json()["detail"]
    incomplete = client.post("/v1/predict", json={"instances": [{"driver_id": 1002}]})
    assert incomplete.status_code == 422
    assert "trip_distance_km" in incomplete.text
