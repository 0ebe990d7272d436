"""Instance parsing, the enricher contract, API keys: plain Python, no Ray."""

from __future__ import annotations

import asyncio

import pytest
import torch

from mlray.config.inference import AuthSection, FeaturesSection
from mlray.serve.api.auth import ApiKeys, AuthConfigError, KeyScope, key_id, required_scope
from mlray.serve.api.ingress import RequestGuard
from mlray.serve.prediction.features import (
    FeatureEnricher,
    InMemoryEnricher,
    InstanceError,
    InstanceParser,
    UnknownEntityError,
    build_enricher,
)

NAMES = ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
TABLE = {1001: {"conv_rate": 0.7, "acc_rate": 0.9, "avg_daily_trips": 14.0}}


def test_vectors_and_named_instances_become_rows_in_feature_order():
    parser = InstanceParser(NAMES)
    rows, metadata = parser.rows([[1, 2, 3, 4], {"trip_distance_km": 4, "avg_daily_trips": 3, "acc_rate": 2,
                                                  "conv_rate": 1, "driver_id": 7}])
    assert torch.equal(rows, torch.tensor([[1.0, 2, 3, 4], [1, 2, 3, 4]]))
    assert metadata == {}


def test_every_bad_instance_is_named():
    with pytest.raises(InstanceError) as caught:
        InstanceParser(NAMES).rows([[1, 2, 3], [1, 2, 3, 4], {"conv_rate": 1}, {**dict.fromkeys(NAMES, 1), "acc_rate": "x"}])
    locations = [p["loc"] for p in caught.value.problems]
    assert locations == [["body", "instances", 0], ["body", "instances", 2], ["body", "instances", 3, "acc_rate"]]
    assert "missing features ['acc_rate'" in caught.value.problems[1]["msg"]


def test_entity_instances_go_through_the_enricher_with_its_metadata():
    enricher = build_enricher(FeaturesSection(
        enricher="mlray.serve.prediction.features:InMemoryEnricher",
        kwargs={"entity_key": "driver_id", "feature_names": NAMES, "table": TABLE},
    ))
    assert isinstance(enricher, FeatureEnricher)
    rows, metadata = InstanceParser(NAMES, enricher).rows([[1, 2, 3, 4], {"driver_id": 1001, "trip_distance_km": 2.5}])
    assert rows[1].tolist() == pytest.approx([0.7, 0.9, 14.0, 2.5])
    assert metadata == {"source": "in_memory", "entities": 1}
    with pytest.raises(UnknownEntityError):
        InstanceParser(NAMES, enricher).rows([{"driver_id": 5, "trip_distance_km": 2.5}])


def test_a_factory_without_enrich_is_refused():
    with pytest.raises(TypeError, match="has no enrich"):
        build_enricher(FeaturesSection(enricher="collections:OrderedDict"))


def auth(**fields) -> AuthSection:
    return AuthSection(**{"api_keys_env": "K", "api_keys_file": None, "admin_keys_env": "A", "admin_keys_file": None,
                          **fields})


def test_keys_from_env_and_file_and_bearer_checks(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# comment\nfile-key\n\n")
    keys = ApiKeys.load(auth(api_keys_file=str(key_file)), environ={"K": "key-alpha, key-beta"})

    def accepts(authorization):
        return keys.identify(authorization) is not None

    assert accepts("Bearer key-alpha") and accepts("bearer key-beta") and accepts("Bearer file-key")
    assert not accepts(None) and not accepts("Bearer c") and not accepts("key-alpha") and not accepts("Basic key-alpha")
    assert "key-alpha" not in repr(keys) and "file-key" not in repr(keys) and len(keys.predict.digests) == 3


def test_admin_keys_come_from_their_own_env_and_file_and_callers_are_named_by_key_id(tmp_path):
    admin_file = tmp_path / "admin-keys"
    admin_file.write_text("# operators\nfile-admin\n")
    keys = ApiKeys.load(auth(admin_keys_file=str(admin_file)), environ={"K": "predict-key", "A": "env-admin"})
    predicting = keys.identify("Bearer predict-key")
    assert predicting is not None and not predicting.admin and predicting.key_id == key_id("predict-key")
    for admin_key in ("env-admin", "file-admin"):
        caller = keys.identify(f"Bearer {admin_key}")
        assert caller is not None and caller.admin and caller.key_id == key_id(admin_key)
    assert keys.identify("Bearer A") is None and keys.identify("Bearer admin") is None
    assert key_id("env-admin") != key_id("file-admin") and "env-admin" not in key_id("env-admin")
    assert "env-admin" not in repr(keys) and "file-admin" not in repr(keys) and len(keys.admin.digests) == 2


def test_routes_need_no_key_only_for_health_and_an_admin_key_for_anything_but_reads_and_predictions():
    assert required_scope("GET", "/healthz") is None and required_scope("HEAD", "/readyz") is None
    for method, route in [("GET", "/v1/models"), ("GET", "/v1/rollout"), ("POST", "/v1/predict"),
                          ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/"), ("GET", ""), ("GET", "/healthz/")]:
        assert required_scope(method, route) is KeyScope.PREDICT, (method, route)
    for method, route in [("PUT", "/v1/rollout"), ("POST", "/v1/rollout"), ("DELETE", "/v1/models"),
                          ("PATCH", "/v1/predict"), ("POST", "/healthz"), ("OPTIONS", "/v1/predict")]:
        assert required_scope(method, route) is KeyScope.ADMIN, (method, route)


def test_without_keys_only_a_loopback_service_may_run_open():
    keys = ApiKeys.load(auth(), environ={})
    caller = keys.identify(None)
    assert keys.open and caller is not None and caller.admin
    keys.require_keys_unless_loopback("127.0.0.1")
    for host in ("0.0.0.0", None):
        with pytest.raises(AuthConfigError, match="refusing"):
            keys.require_keys_unless_loopback(host)


def test_any_key_closes_the_service_and_admin_keys_alone_are_enough_to_run_exposed():
    only_prediction = ApiKeys.load(auth(), environ={"K": "p"})
    assert not only_prediction.open and only_prediction.identify(None) is None
    assert not only_prediction.identify("Bearer p").admin
    only_prediction.require_keys_unless_loopback("0.0.0.0")
    only_admin = ApiKeys.load(auth(), environ={"A": "a"})
    assert only_admin.identify(None) is None and only_admin.identify("Bearer a").admin
    only_admin.require_keys_unless_loopback("0.0.0.0")


def guarded_call(keys: ApiKeys, scope: dict) -> tuple[list[dict], bool]:
    """One ASGI call through the RequestGuard: what it sent, and whether the app behind it was reached."""
    sent: list[dict] = []
    reached: list[dict] = []

    async def app(scope, receive, send) -> None:
        reached.append(scope)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(RequestGuard(app, keys=keys, max_body_bytes=1024)(scope, receive, send))
    return sent, bool(reached)


def http_scope(method: str, path: str, root_path: str, authorization: str | None = None) -> dict:
    headers = [(b"content-length", b"2")] + ([(b"authorization", authorization.encode())] if authorization else [])
    return {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": headers}


def test_the_guard_reads_the_route_without_the_root_path_and_refuses_websockets():
    keys = ApiKeys.load(auth(), environ={"K": "p", "A": "a"})
    for path, root in [("/api/v1/models", "/api"), ("/v1/models", ""), ("/x/api/v1/predict", "/x/api")]:
        sent, reached = guarded_call(keys, http_scope("GET", path, root))
        assert not reached and sent[0]["status"] == 401, (path, root)
        assert guarded_call(keys, http_scope("GET", path, root, "Bearer p"))[1]
    assert guarded_call(keys, http_scope("GET", "/api/healthz", "/api"))[1]
    assert guarded_call(keys, http_scope("GET", "/api/readyz", "/api"))[1]
    sent, reached = guarded_call(keys, http_scope("PUT", "/api/v1/rollout", "/api", "Bearer p"))
    assert not reached and sent[0]["status"] == 403
    assert guarded_call(keys, http_scope("PUT", "/api/v1/rollout", "/api", "Bearer a"))[1]
    sent, reached = guarded_call(keys, {"type": "websocket", "path": "/api/v1/predict", "root_path": "/api",
                                        "headers": [(b"authorization", b"Bearer a")]})
    assert not reached and sent == [{"type": "websocket.close", "code": 1008}]
