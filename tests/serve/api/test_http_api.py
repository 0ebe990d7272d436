"""The HTTP contract of the batched deployment: routes, validation, auth, enrichment, logging."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlray.config.inference import ServiceSection

from tests.serve.conftest import (
    Bundles,
    assert_same_predictions,
    expected,
    sample_rows,
    start_app,
    stop_app,
    wait_for,
)

API_KEY = "test-key-4d1f"
DRIVERS = {"1001": {"conv_rate": 0.7, "acc_rate": 0.9, "avg_daily_trips": 14.0}}


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "api-keys"
    path.write_text(f"# one key per line\n{API_KEY}\nsecond-key\n")
    return path


@pytest.fixture(scope="module")
def log_sink(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prediction_logs")


@pytest.fixture(scope="module")
def client(serve_url: str, bundles: Bundles, keys_file: Path, log_sink: Path) -> Iterator[httpx.Client]:
    with start_app(
        serve_url,
        bundles,
        headers={"Authorization": f"Bearer {API_KEY}"},
        service={"max_body_bytes": 4096, "max_instances": 20},
        auth={"api_keys_file": str(keys_file)},
        features={
            "enricher": "mlray.serve.prediction.features:InMemoryEnricher",
            "kwargs": {"entity_key": "driver_id", "feature_names": ["conv_rate", "acc_rate", "avg_daily_trips",
                                                                     "trip_distance_km"], "table": DRIVERS},
            "unknown_entity_status": 404,
        },
        prediction_log={"sink": str(log_sink), "sample_rate": 1.0, "flush_every": 5, "flush_interval_s": 0.5},
    ) as client:
        yield client
    stop_app()


def test_predict_returns_the_models_predictions_for_vectors_and_named_instances(client, bundles):
    rows = sample_rows(3)
    named = [dict(zip(["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"], rows[0], strict=True))]
    response = client.post("/v1/predict", json={"instances": rows + named})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "v1"
    assert_same_predictions(body["predictions"], expected(bundles, "v1", rows + rows[:1]))


def test_a_version_header_pins_the_version_and_unknown_versions_are_404(client, bundles):
    rows = sample_rows(2, seed=5)
    pinned = client.post("/v1/predict", json={"instances": rows}, headers={"x-model-version": "v2"})
    assert pinned.json()["model_version"] == "v2"
    assert_same_predictions(pinned.json()["predictions"], expected(bundles, "v2", rows))
    assert expected(bundles, "v1", rows) != expected(bundles, "v2", rows)
    unknown = client.post("/v1/predict", json={"instances": rows}, headers={"x-model-version": "v9"})
    assert unknown.status_code == 404 and "v9" in unknown.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"instances": [[0.1, 0.2, 3.0]]}, 422, ["body", "instances", 0]),
        ({"instances": []}, 422, ["body", "instances"]),
        ({"rows": [[0.1, 0.2, 3.0, 4.0]]}, 422, ["body", "instances"]),
        (
            {"instances": [{"conv_rate": "high", "acc_rate": 0.9, "avg_daily_trips": 3, "trip_distance_km": 2}]},
            422,
            ["body", "instances", 0, "conv_rate"],
        ),
        ({"instances": [[0.1, 0.2, 3.0, "x"]]}, 422, ["body", "instances", 0]),
        ({"instances": [[0.1, 0.2, 3.0, 4.0]] * 21}, 422, ["body", "instances"]),
    ],
    ids=["short-vector", "empty", "wrong-field", "named-not-a-number", "not-a-number", "too-many"],
)
def test_bad_shapes_get_422_naming_the_field(client, body, status, field):
    response = client.post("/v1/predict", json=body)
    assert response.status_code == status, response.text
    locations = [error["loc"][: len(field)] for error in response.json()["detail"]]
    assert field in locations


def test_bad_json_oversize_and_missing_length_get_4xx_and_the_service_keeps_answering(client, bundles):
    bad_json = client.post("/v1/predict", content=b'{"instances": [[1, 2', headers={"content-type": "application/json"})
    assert bad_json.status_code == 400
    oversize = client.post("/v1/predict", json={"instances": [[0.5, 0.5, 10.0, 5.0]] * 400})
    assert oversize.status_code == 413 and "max_body_bytes" in oversize.json()["detail"]

    def chunked():
        yield b'{"instances": [[0.5, 0.5, 10.0, 5.0]]}'

    no_length = client.post("/v1/predict", content=chunked(), headers={"content-type": "application/json"})
    assert no_length.status_code == 411
    rows = sample_rows(1, seed=9)
    after = client.post("/v1/predict", json={"instances": rows})
    assert after.status_code == 200
    assert_same_predictions(after.json()["predictions"], expected(bundles, "v1", rows))


def test_every_route_needs_a_valid_key_but_health_routes_do_not(client, serve_url):
    with httpx.Client(base_url=serve_url, timeout=30) as anonymous:
        body = {"instances": sample_rows(1)}
        assert anonymous.post("/v1/predict", json=body).status_code == 401
        wrong = anonymous.post("/v1/predict", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/v1/models").status_code == 401
        assert anonymous.get("/v1/rollout").status_code == 401
        assert anonymous.post("/v1/predict", json=body, headers={"Authorization": "Bearer second-key"}).status_code == 200
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").json()["status"] == "ready"
        assert anonymous.get("/openapi.json").status_code == 401
    assert client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"]["requestBody"]


def test_entity_instances_are_enriched_and_unknown_entities_get_the_configured_status(client, bundles):
    response = client.post("/v1/predict", json={"instances": [{"driver_id": 1001, "trip_distance_km": 3.2}]})
    assert response.status_code == 200, response.text
    stored = DRIVERS["1001"]
    row = [stored["conv_rate"], stored["acc_rate"], stored["avg_daily_trips"], 3.2]
    assert_same_predictions(response.json()["predictions"], expected(bundles, "v1", [row]))
    assert response.json()["metadata"]["features"] == {"source": "in_memory", "entities": 1}
    unknown = client.post("/v1/predict", json={"instances": [{"driver_id": 999, "trip_distance_km": 3.2}]})
    assert unknown.status_code == 404 and "999" in unknown.json()["detail"]


def test_models_route_lists_versions_and_what_this_replica_loaded(client):
    models = client.get("/v1/models").json()
    assert models["stable"] == "v1" and set(models["versions"]) == {"v1", "v2", "broken"}
    assert models["loaded_here"]["v1"] == ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
    defaults = ServiceSection()
    assert models["batching"] == {"max_batch_size": defaults.batch_size, "batch_wait_timeout_s": defaults.batch_wait_timeout_s}


def test_sampled_predictions_are_logged_to_the_sink_without_keys(client, log_sink):
    rows = sample_rows(6, seed=11)
    for row in rows:
        assert client.post("/v1/predict", json={"instances": [row]}).status_code == 200

    def logged_rows() -> list[list[float]]:
        records = [json.loads(line) for f in log_sink.rglob("*.jsonl") for line in f.read_text().splitlines()]
        return [r["instances"][0] for r in records if r["instances"][0] in rows]

    found = wait_for(lambda: len(logged_rows()) == len(rows) and logged_rows(), 20, "prediction log records")
    assert sorted(map(tuple, found)) == sorted(map(tuple, rows))
    assert API_KEY not in "".join(f.read_text() for f in log_sink.rglob("*.jsonl"))
