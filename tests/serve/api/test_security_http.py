"""Attacks on the HTTP layer, performed for real against the app served under a route prefix (``/api``).

Keys come from mounted-secret files: one prediction key, one admin key. Every probe is recorded with
what the service actually answered (see tests/security_probes.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlray.serve.api.auth import key_id
from tests.serve.conftest import Bundles, assert_same_predictions, expected, sample_rows, start_app, stop_app
from tests.waiting import wait_for

PREFIX = "/api"
PREDICTION_KEY = secrets.token_urlsafe(16)
ADMIN_KEY = secrets.token_urlsafe(16)
ROW = [0.5, 0.5, 10.0, 5.0]
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
# Every non-health route the app has, plus one it has not: all need a key.
KEYED_ROUTES = [
    ("GET", "/v1/models"),
    ("POST", "/v1/predict"),
    ("GET", "/v1/rollout"),
    ("PUT", "/v1/rollout"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/v1/no-such-route"),
]
BODIES = {"/v1/predict": {"instances": [ROW]}, "/v1/rollout": {"canary": "v2", "canary_weight": 1.0}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def answered(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:160]}"


@pytest.fixture(scope="module")
def api(serve_url: str, bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    secrets_dir = tmp_path_factory.mktemp("serve-secrets")
    (secrets_dir / "api-keys").write_text(f"{PREDICTION_KEY}\n")
    (secrets_dir / "admin-keys").write_text(f"# rollout operators\n{ADMIN_KEY}\n")
    auth = {"api_keys_file": str(secrets_dir / "api-keys"), "admin_keys_file": str(secrets_dir / "admin-keys")}
    with start_app(serve_url, bundles, route_prefix=PREFIX, auth=auth) as client:
        yield client
    stop_app()


def rollout_state(api: httpx.Client) -> dict:
    response = api.get(f"{PREFIX}/v1/rollout", headers=bearer(PREDICTION_KEY))
    assert response.status_code == 200, response.text
    return response.json()


def change_rollout(api: httpx.Client, change: dict, key: str = ADMIN_KEY) -> httpx.Response:
    return api.put(f"{PREFIX}/v1/rollout", json=change, headers=bearer(key))


def replica_log() -> str:
    """The ingress replicas' Serve log files on this node (this session's own logs folder, not session_latest)."""
    import ray

    logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"  # no public API names the folder
    return "".join(path.read_text() for path in sorted(logs.glob("replica_*_PredictionService_*.log")))


def logged_line(*parts: str) -> str | None:
    return next((line for line in replica_log().splitlines() if all(part in line for part in parts)), None)


@pytest.mark.security
def test_every_route_but_health_needs_a_key_under_a_route_prefix(api, security_probe):
    before = rollout_state(api)
    observed = {}
    for method, route in KEYED_ROUTES:
        for label, headers in (("no API key", {}), ("a wrong API key", bearer("not-a-key"))):
            response = api.request(method, PREFIX + route, json=BODIES.get(route), headers=headers)
            assert response.status_code == 401, (method, route, label, response.text)
            assert response.json() == {"detail": "missing or invalid API key"}
            assert response.headers["www-authenticate"] == "Bearer"
            observed[(method, route, label)] = answered(response)
    assert rollout_state(api)["canary"] == before["canary"] is None
    health = {route: api.get(PREFIX + route) for route in ("/healthz", "/readyz")}
    assert health["/healthz"].json() == {"status": "ok"} and health["/readyz"].json() == {"status": "ready"}
    for (method, route, label), seen in observed.items():
        security_probe("serving auth", f"{method} {PREFIX}{route} with {label} (app at route_prefix {PREFIX})",
                       "401, nothing done", seen)
    for route, response in health.items():
        security_probe("serving auth", f"GET {PREFIX}{route} with no API key", "200: health probes stay open",
                       answered(response))


@pytest.mark.security
def test_a_prediction_key_predicts_but_cannot_change_the_rollout(api, bundles, security_probe):
    rows = sample_rows(3, seed=41)
    predicted = api.post(f"{PREFIX}/v1/predict", json={"instances": rows}, headers=bearer(PREDICTION_KEY))
    assert predicted.status_code == 200, predicted.text
    assert_same_predictions(predicted.json()["predictions"], expected(bundles, "v1", rows))
    assert api.get(f"{PREFIX}/v1/models", headers=bearer(PREDICTION_KEY)).json()["stable"] == "v1"
    refused = change_rollout(api, {"canary": "v2", "canary_weight": 1.0}, key=PREDICTION_KEY)
    assert refused.status_code == 403 and "admin key" in refused.json()["detail"]
    assert rollout_state(api)["canary"] is None
    security_probe("serving auth", f"PUT {PREFIX}/v1/rollout (canary v2 at weight 1) with a prediction key",
                   "403, rollout unchanged", f"{answered(refused)}; canary after: {rollout_state(api)['canary']}")


@pytest.mark.security
def test_an_admin_key_changes_the_rollout_and_the_change_is_logged_by_key_id(api, security_probe):
    changed = change_rollout(api, {"canary": "v2", "canary_weight": 0.25})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["canary"], changed.json()["canary_weight"]) == ("v2", 0.25)
    assert rollout_state(api)["canary"] == "v2"
    admin_id = key_id(ADMIN_KEY)
    line = wait_for(lambda: logged_line(f"rollout change by {admin_id}:", "canary=None", "-> ", "canary='v2'"),
                    30, "the rollout change's audit line in the replica log")
    assert line.index("canary=None") < line.index("-> ") < line.index("canary='v2'")
    log_text = replica_log()
    assert ADMIN_KEY not in log_text and PREDICTION_KEY not in log_text
    restored = change_rollout(api, {"clear_canary": True})
    assert restored.status_code == 200 and restored.json()["canary"] is None
    security_probe("serving auth", f"PUT {PREFIX}/v1/rollout with an admin key",
                   "200, logged with the key's id (never the key) and the state before -> after",
                   f"{changed.status_code}; log: {line[line.index('rollout change by'):][:200]}")


BAD_FEATURES = {
    "400-digit integer in a vector": ('{"instances": [[0.5, 0.5, 10.0, %s]]}' % ("9" * 400), 3),
    "400-digit integer by name": (
        '{"instances": [{"conv_rate": %s, "acc_rate": 0.5, "avg_daily_trips": 10, "trip_distance_km": 5}]}'
        % ("9" * 400), "conv_rate"),
    "NaN in a vector": ('{"instances": [[0.5, NaN, 10.0, 5.0]]}', 1),
    "-Infinity by name": (
        '{"instances": [{"conv_rate": 0.5, "acc_rate": -Infinity, "avg_daily_trips": 10, "trip_distance_km": 5}]}',
        "acc_rate"),
    "1e300 (beyond float32) in a vector": ('{"instances": [[0.5, 0.5, 1e300, 5.0]]}', 2),
    "true in a vector": ('{"instances": [[true, 0.5, 10.0, 5.0]]}', 0),
    "true by name": (
        '{"instances": [{"conv_rate": 0.5, "acc_rate": 0.5, "avg_daily_trips": 10, "trip_distance_km": true}]}',
        "trip_distance_km"),
}


@pytest.mark.security
@pytest.mark.parametrize("case", list(BAD_FEATURES))
def test_bad_feature_values_get_422_naming_the_field(api, bundles, case, security_probe):
    body, field = BAD_FEATURES[case]
    response = api.post(f"{PREFIX}/v1/predict", content=body,
                        headers={**bearer(PREDICTION_KEY), "content-type": "application/json"})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [error["loc"] for error in errors] == [["body", "instances", 0, field]]
    assert "9" * 40 not in response.text
    after = api.post(f"{PREFIX}/v1/predict", json={"instances": [ROW]}, headers=bearer(PREDICTION_KEY))
    assert_same_predictions(after.json()["predictions"], expected(bundles, "v1", [ROW]))
    security_probe("serving input", f"POST {PREFIX}/v1/predict with {case}", "422 naming the field",
                   f"{response.status_code} {errors}")


@pytest.mark.security
def test_readyz_says_only_not_ready_when_the_stable_model_fails_to_load(api, bundles, security_probe):
    """Last in the module: it makes an unloadable version stable, then puts v1 back."""
    made_stable = change_rollout(api, {"versions": {"gone": "missing-bundle"}, "stable": "gone"})
    assert made_stable.status_code == 200, made_stable.text
    try:
        response = api.get(f"{PREFIX}/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "not ready"}
        for secret in ("missing-bundle", str(bundles.root), "Error", "gone"):
            assert secret not in response.text
        wait_for(lambda: logged_line("not ready: stable version gone does not load", "missing-bundle"),
                 30, "the readiness failure's details in the replica log")
    finally:
        assert change_rollout(api, {"stable": "v1"}).status_code == 200
    assert api.get(f"{PREFIX}/readyz").json() == {"status": "ready"}
    security_probe("serving input", f"GET {PREFIX}/readyz (no key) while the stable version cannot load",
                   "503 'not ready' only: no exception text, paths or bucket names (they go to the log)",
                   answered(response))
