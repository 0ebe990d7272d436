"""Over real HTTP: a rollout cannot point the service at a location outside the allowed roots."""

from __future__ import annotations

import pytest

from mlray.storage import Storage
from tests.serve.conftest import make_bundle, sample_rows


@pytest.mark.security
def test_a_rollout_to_a_location_outside_the_allowed_roots_is_refused(
    deploy, bundles, tmp_path, security_probe
):
    elsewhere = Storage(str(tmp_path / "elsewhere"))
    make_bundle(elsewhere, "v9", seed=9)  # a well-formed bundle: only where it lies is wrong
    client = deploy()
    for location in (elsewhere.url("v9"), "../../elsewhere/v9", "gs://another-bucket/v9"):
        response = client.put("/v1/rollout", json={"versions": {"v9": location}, "canary": "v9",
                                                   "canary_weight": 0.5})
        detail = response.json()["detail"]
        assert response.status_code == 403, response.text
        assert "versions.v9" in detail and "outside the allowed model roots" in detail
        assert str(bundles.root) in detail and "models:/" in detail
    assert "v9" not in client.get("/v1/models").json()["versions"]
    inside = client.put("/v1/rollout", json={"versions": {"v3": "v2"}})  # relative: under storage.uri
    assert inside.status_code == 200 and inside.json()["versions"]["v3"] == "v2"
    security_probe("model loading", "PUT /v1/rollout with versions.v9 = a well-formed bundle "
                   "outside storage.uri, ../.. and another bucket",
                   "403 naming the location and the allowed roots; rollout unchanged",
                   f"{response.status_code} {detail}")


@pytest.mark.security
def test_a_configured_version_outside_the_roots_is_refused_when_a_replica_loads_it(
    deploy, bundles, tmp_path, security_probe
):
    """A location that reached the rollout state some other way still does not load."""
    elsewhere = Storage(str(tmp_path / "elsewhere"))
    make_bundle(elsewhere, "v9", seed=9)
    client = deploy(models={"versions": {"v1": "v1", "v9": elsewhere.url("v9")}, "stable": "v1"})
    response = client.post("/v1/predict", json={"instances": sample_rows(2)},
                           headers={"x-model-version": "v9"})
    assert response.status_code == 500 and "UntrustedModel" in response.json()["detail"]
    assert client.post("/v1/predict", json={"instances": sample_rows(2)}).status_code == 200
    security_probe("model loading", "a replica asked to load a configured version outside the allowed roots",
                   "load refused (500 for that version only)", f"{response.status_code} {response.json()}")
