"""The plain synchronous deployment, and versions loaded from the MLflow model registry."""

from __future__ import annotations

import pytest
import torch

from mlray.models import load_bundle
from mlray.serve.versions import load_model_version
from tests.serve.conftest import assert_same_predictions, expected, sample_rows


def test_sync_deployment_serves_the_same_routes_without_batching(deploy, bundles):
    client = deploy(service={"mode": "sync"}, rollout={"canary": "v2", "canary_weight": 0.5,
                                                        "promote_after_windows": None})
    rows = sample_rows(3, seed=2)
    for version in ("v1", "v2"):
        response = client.post("/v1/predict", json={"instances": rows}, headers={"x-model-version": version})
        assert response.status_code == 200 and response.json()["model_version"] == version
        assert_same_predictions(response.json()["predictions"], expected(bundles, version, rows))
    assert client.post("/v1/predict", json={"instances": [[1.0]]}).status_code == 422
    assert client.get("/v1/models").json()["batching"] is None
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/rollout").json()["canary"] == "v2"


@pytest.fixture
def registered(bundles, mlflow_uri, monkeypatch) -> str:
    import mlflow
    import mlflow.pytorch
    import pandas as pd
    from mlflow.models import infer_signature

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    mlflow.set_tracking_uri(mlflow_uri)
    model, spec = load_bundle(bundles.uri("v2"))
    frame = pd.DataFrame(sample_rows(4), columns=spec.feature_names)
    with torch.no_grad():
        signature = infer_signature(frame, model(torch.tensor(frame.values, dtype=torch.float32)).numpy())
    with mlflow.start_run():
        mlflow.pytorch.log_model(model, name="model", signature=signature, registered_model_name="driver-trips",
                                 serialization_format="pickle")
    mlflow.MlflowClient().set_registered_model_alias("driver-trips", "champion", "1")
    return mlflow_uri


@pytest.mark.parametrize("uri", ["models:/driver-trips/1", "models:/driver-trips@champion"])
def test_registry_versions_load_with_their_signature_and_predict_like_the_bundle(registered, bundles, uri):
    loaded = load_model_version("v2", uri, mlflow_tracking_uri=registered)
    assert loaded.feature_names == ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
    rows = sample_rows(5, seed=6)
    assert_same_predictions(loaded.predict(torch.tensor(rows)), expected(bundles, "v2", rows))
