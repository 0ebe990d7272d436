"""A request the canary fails with a server error is answered by stable, once (``rollout.fallback_to_stable``).

Over real HTTP on a real Serve app: the canary's failure still counts against it in the rollout's figures while
the client gets stable's answer, marked by headers; a client error (4xx), a pinned version and a failing stable
are answered as they are. Rollback under this fallback is in rollout/test_canary_relative.py. Canaries here take
all traffic and ``min_requests`` is out of reach, so no window is judged and the canary stays in place.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import torch

from mlray.models import ModelSpec, build_mlp, save_bundle
from mlray.serve.api.schemas import FALLBACK_HEADER
from mlray.storage import Storage
from mlray.usecases.driver_trips import FEATURE_COLUMNS
from tests.serve.conftest import HIDDEN, Bundles, assert_same_predictions, expected, sample_rows, wait_for

VERSION_HEADER = "x-model-version"  # models.version_header's default
RENAMED_FEATURES = ["f0", "f1", "f2", "f3"]
NEVER_JUDGED = {"canary_weight": 1.0, "min_requests": 1_000_000, "promote_after_windows": None}


@pytest.fixture(scope="module")
def renamed(bundles: Bundles) -> Bundles:
    """``renamed``: a working model whose input columns are named differently from stable's."""
    torch.manual_seed(5)
    kwargs = {"input_dim": len(RENAMED_FEATURES), "output_dim": 2, "hidden": HIDDEN}
    spec = ModelSpec("mlray.models.mlp:build_mlp", kwargs, RENAMED_FEATURES)
    save_bundle(build_mlp(**kwargs), spec, Storage(str(bundles.root)), "renamed")
    return bundles


def deploy_with_canary(
    deploy: Any, mode: str, versions: dict[str, str], stable: str, canary: str, **rollout: Any
) -> httpx.Client:
    client = deploy(
        service={"mode": mode},
        models={"versions": versions, "stable": stable},
        rollout={"canary": canary, **NEVER_JUDGED, **rollout},
    )
    # Replicas start routing everything to stable and take the canary from the controller's next report.
    wait_for(lambda: client.get("/v1/models").json()["canary"] == canary, 30, f"replica to route to {canary}")
    return client


def totals(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {version: f["total"] for version, f in client.get("/v1/rollout").json()["figures"].items()}


@pytest.mark.parametrize("mode", ["batched", "sync"])
def test_a_request_the_canary_fails_is_answered_by_stable_and_counted_against_the_canary(deploy, bundles, mode):
    client = deploy_with_canary(deploy, mode, {"v1": "v1", "broken": "broken"}, "v1", "broken")
    rows = sample_rows(20, seed=7)
    for row in rows:
        response = client.post("/v1/predict", json={"instances": [row]})
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == "v1"
        assert response.headers[VERSION_HEADER] == "v1" and response.headers[FALLBACK_HEADER] == "broken"
        assert_same_predictions(response.json()["predictions"], expected(bundles, "v1", [row]))

    def counted() -> dict[str, dict[str, Any]] | None:
        figures = totals(client)
        return figures if {"broken", "v1"} <= figures.keys() and figures["v1"]["requests"] >= 20 else None

    figures = wait_for(counted, 10, "20 stable answers in the rollout figures")
    assert figures["broken"]["errors"] == figures["broken"]["requests"] == 20
    assert figures["v1"]["requests"] == 20 and figures["v1"]["errors"] == 0
    assert client.get("/v1/rollout").json()["status"] == "canary"

    # A client that pins the canary gets the canary's answer, failure included.
    pinned = client.post("/v1/predict", json={"instances": [rows[0]]}, headers={VERSION_HEADER: "broken"})
    assert pinned.status_code == 500 and "broken" in pinned.json()["detail"]
    assert FALLBACK_HEADER not in pinned.headers


def test_without_fallback_the_client_gets_the_canary_s_failure(deploy):
    client = deploy_with_canary(deploy, "batched", {"v1": "v1", "broken": "broken"}, "v1", "broken",
                                fallback_to_stable=False)
    response = client.post("/v1/predict", json={"instances": [sample_rows(1)[0]]})
    assert response.status_code == 500 and response.json()["detail"].startswith("model version broken failed")
    assert FALLBACK_HEADER not in response.headers


def test_a_client_error_on_the_canary_is_not_retried_on_stable(deploy, renamed):
    client = deploy_with_canary(deploy, "batched", {"v1": "v1", "renamed": "renamed"}, "v1", "renamed")
    body = {"instances": [dict(zip(FEATURE_COLUMNS, sample_rows(1)[0], strict=True))]}
    # Stable would answer it: the columns are stable's.
    assert client.post("/v1/predict", json=body, headers={VERSION_HEADER: "v1"}).status_code == 200

    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422, response.text
    assert "missing features" in str(response.json()["detail"]) and FALLBACK_HEADER not in response.headers


@pytest.mark.parametrize("mode", ["batched", "sync"])
def test_when_stable_fails_too_the_client_gets_stable_s_error_after_one_retry(deploy, mode):
    versions = {"broken": "broken", "broken-too": "broken"}
    client = deploy_with_canary(deploy, mode, versions, stable="broken", canary="broken-too")
    for _ in range(5):
        response = client.post("/v1/predict", json={"instances": [sample_rows(1)[0]]})
        assert response.status_code == 500
        assert response.json()["detail"].startswith("model version broken failed")

    def counted() -> dict[str, int] | None:
        errors = {version: figure["errors"] for version, figure in totals(client).items()}
        return errors if errors.get("broken-too", 0) >= 5 and errors.get("broken", 0) >= 5 else None

    # Each request: one canary attempt, one stable attempt, no more.
    assert wait_for(counted, 10, "5 failures of each version in the rollout figures") == {"broken-too": 5, "broken": 5}
