"""The plain synchronous deployment, and versions loaded from the MLflow model registry."""

from __future__ import annotations

import pytest
import torch
from mlflow.models import get_model_info

from mlray.models import UntrustedModel, load_bundle
from mlray.models.bundle import WEIGHTS_FILE
from mlray.models.mlflow_bundle import log_bundle_model, save_model
from mlray.serve.prediction.versions import load_model_version
from tests.pickle_payloads import CreatesMarker, pickled_payload
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
    """v2 logged and registered the way training does it (bundle files, no pickle), with an alias."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    mlflow.set_tracking_uri(mlflow_uri)
    model, spec = load_bundle(bundles.uri("v2"))
    frame = pd.DataFrame(sample_rows(4), columns=spec.feature_names)
    with torch.no_grad():
        signature = infer_signature(frame, model(torch.tensor(frame.values, dtype=torch.float32)).numpy())
    with mlflow.start_run():
        log_bundle_model(model, spec, "model", signature=signature, registered_model_name="driver-trips")
    mlflow.MlflowClient().set_registered_model_alias("driver-trips", "champion", "1")
    return mlflow_uri


@pytest.mark.parametrize("uri", ["models:/driver-trips/1", "models:/driver-trips@champion"])
def test_registry_versions_load_with_their_signature_and_predict_like_the_bundle(registered, bundles, uri):
    loaded = load_model_version("v2", uri, mlflow_tracking_uri=registered)
    assert loaded.feature_names == ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
    rows = sample_rows(5, seed=6)
    assert_same_predictions(loaded.predict(torch.tensor(rows)), expected(bundles, "v2", rows))
    signature = get_model_info(uri).signature.inputs.input_names()
    assert signature == loaded.feature_names  # what the registry shows is what the model reads


def test_a_registry_version_is_served_over_http(registered, deploy, bundles):
    versions = {"v1": "v1", "champion": "models:/driver-trips@champion"}
    client = deploy(models={"versions": versions, "stable": "v1"},
                    mlflow={"tracking_uri": registered})
    rows = sample_rows(3, seed=4)
    response = client.post("/v1/predict", json={"instances": rows}, headers={"x-model-version": "champion"})
    assert response.status_code == 200, response.text
    assert_same_predictions(response.json()["predictions"], expected(bundles, "v2", rows))


@pytest.mark.security
def test_a_pickled_registry_model_is_refused_without_unpickling(mlflow_uri, tmp_path, security_probe):
    """The old format (mlflow.pytorch, pickle) registered with a payload: never handed to an unpickler."""
    import mlflow
    import mlflow.pytorch

    marker = tmp_path / "ran"
    mlflow.set_tracking_uri(mlflow_uri)
    with mlflow.start_run():
        # Explicit requirements: else MLflow loads the model to infer them and runs the payload itself.
        mlflow.pytorch.log_model(CreatesMarker(marker), name="model", registered_model_name="pickled",
                                 serialization_format="pickle", pip_requirements=["torch"])
    assert not marker.exists()
    with pytest.raises(UntrustedModel, match="flavors .*'pytorch'.* never a pickled model") as refused:
        load_model_version("v", "models:/pickled/1", mlflow_tracking_uri=mlflow_uri)
    assert not marker.exists()
    security_probe("model loading", "registry model models:/pickled/1 logged with mlflow.pytorch (pickle) "
                   "whose __reduce__ runs `touch marker`", "refused by flavor before download; nothing runs",
                   f"{refused.value}; marker absent")


@pytest.mark.security
def test_a_registry_bundle_with_pickled_weights_is_refused(mlflow_uri, bundles, tmp_path, security_probe):
    """Right flavor, crafted model.pt: the weights-only load refuses it."""
    import mlflow
    from mlflow.models import Model

    marker, folder = tmp_path / "ran", tmp_path / "crafted"
    mlflow.set_tracking_uri(mlflow_uri)
    model, spec = load_bundle(bundles.uri("v1"))
    save_model(str(folder), Model(), model, spec)
    (folder / WEIGHTS_FILE).write_bytes(pickled_payload(marker, "0.mean"))
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "crafted")
    client.create_registered_model("crafted")
    client.create_model_version("crafted", f"{run.info.artifact_uri}/crafted", run_id=run.info.run_id)
    with pytest.raises(UntrustedModel, match="weights-only loader .*GLOBAL posix.system") as refused:
        load_model_version("v", "models:/crafted/1", mlflow_tracking_uri=mlflow_uri)
    assert not marker.exists()
    security_probe("model loading", "registry model models:/crafted/1 (mlray_bundle flavor) whose model.pt "
                   "carries a __reduce__ payload", "refused by the weights-only loader; nothing runs",
                   f"{refused.value.args[0].split(': ', 1)[1]}; marker absent")
