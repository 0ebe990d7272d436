"""The HTTP API (FastAPI) and the two prediction deployments that serve it.

Routes (the same for both deployments; docs at ``/docs``, schema at ``/openapi.json``):

* ``POST /v1/predict``  ``{"instances": [...]}`` -> ``{"predictions", "model_version", "metadata"}``; the version
  that answered is also in the ``models.version_header`` header. A request the canary fails with a server error
  is answered by stable (``rollout.fallback_to_stable``; header ``x-mlray-canary-fallback``: the canary)
* ``GET /v1/models``    versions, stable, canary, what this replica has loaded
* ``GET /v1/rollout``   rollout state and per-version figures; ``PUT`` changes it at runtime
* ``GET /healthz``      liveness (open);  ``GET /readyz``  stable model loaded (open)

Every other route needs an API key, whatever the route prefix or root path (see mlray.serve.auth);
``PUT /v1/rollout`` needs an admin key and each change is logged with the caller's key id.

``BatchedPredictionService`` runs the model through ``@serve.batch`` with a
``serve.multiplexed`` LRU of versions; ``SyncPredictionService`` is the plain
synchronous variant (no batching), selected by ``service.mode: sync``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Mapping
from typing import Any

import torch
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from starlette._utils import get_route_path  # the router's own reading of the path: the guard must match it
from starlette.types import ASGIApp, Receive, Scope, Send

from mlray.config.inference import InferenceConfig
from mlray.serve.auth import AccessDenied, ApiKeys, Caller, required_scope
from mlray.serve.coalesce import CallCoalescer, HideBatchConcurrencyWarning
from mlray.serve.schemas import (
    FALLBACK_HEADER,
    ModelsView,
    PredictRequest,
    PredictResponse,
    RolloutPatch,
    public_location,
)
from mlray.serve.service import Answer, ModelFailed, PredictionCore, ServiceError, VersionCache
from mlray.serve.versions import LoadedModel

log = logging.getLogger(__name__)
# A child of Serve's logger: lands in the replica's Serve log (JSON in the shipped config) with its context.
serve_log = logging.getLogger("ray.serve").getChild("mlray")

BODY_METHODS = {"POST", "PUT", "PATCH"}
ROLLOUT_FIELDS = ("stable", "canary", "canary_weight", "status", "versions")


def audit(message: str, *args: Any) -> None:
    """An audit line, written through at once even where Serve buffers its request-path logs."""
    serve_log.warning(message, *args)  # WARNING: kept under a quieter Serve log level too
    for handler in logging.getLogger("ray.serve").handlers:
        handler.flush()


def rollout_summary(state: Mapping[str, Any]) -> str:
    return " ".join(f"{name}={state.get(name)!r}" for name in ROLLOUT_FIELDS)


class RequestGuard:
    """ASGI middleware: API key and its scope for the route, then body size, before any body is read.

    The route is read as the router reads it, without the root path and route prefix that ASGI
    leaves in ``scope["path"]``; the caller goes to ``request.state.caller``.
    """

    def __init__(self, app: ASGIApp, keys: ApiKeys, max_body_bytes: int):
        self.app = app
        self.keys = keys
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the API has no websocket route: refused, never passed on unchecked
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rejection = self._reject(scope, get_route_path(scope), scope["method"], headers)
        if rejection is None:
            await self.app(scope, receive, send)
            return
        status, detail, extra_headers = rejection
        await JSONResponse({"detail": detail}, status_code=status, headers=extra_headers)(scope, receive, send)

    def _reject(
        self, scope: Scope, route: str, method: str, headers: dict[str, str]
    ) -> tuple[int, str, dict[str, str]] | None:
        needed = required_scope(method, route)
        if needed is not None:
            try:
                caller = self.keys.authorize(headers.get("authorization"), needed)
            except AccessDenied as exc:
                return exc.status_code, exc.detail, exc.headers
            scope.setdefault("state", {})["caller"] = caller
        if method in BODY_METHODS:
            limit = self.max_body_bytes
            length = headers.get("content-length")
            if length is None:
                return 411, "request body needs a Content-Length header", {}
            if not length.isdigit() or int(length) > limit:
                return 413, f"request body over the limit of {limit} bytes (service.max_body_bytes)", {}
        return None


def build_api(service: BatchedPredictionService | SyncPredictionService) -> FastAPI:
    core = service.core
    app = FastAPI(
        title="mlray inference",
        version="1",
        description="Predictions from versioned models with canary rollouts. "
        "Every route but /healthz and /readyz needs `Authorization: Bearer <API key>`; "
        "PUT /v1/rollout needs an admin key.",
    )

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "body is not valid JSON"}, status_code=400)
        detail = [{"loc": public_location(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        stable = core.rollout.state.stable
        try:
            await service.ensure_loaded(stable)
        except Exception as exc:  # noqa: BLE001 - not ready, whatever the reason
            # Unauthenticated callers see only the verdict; paths and errors go to the log.
            serve_log.warning("not ready: stable version %s does not load: %s: %s", stable, type(exc).__name__, exc)
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/v1/models", response_model=ModelsView)
    async def models() -> ModelsView:
        state = core.rollout.state
        return ModelsView(
            stable=state.stable,
            canary=state.canary,
            canary_weight=state.canary_weight,
            versions=state.versions,
            loaded_here={v: m.feature_names for v, m in service.loaded().items()},
            version_header=core.config.models.version_header,
            batching=service.batching(),
            replica=core.replica,
        )

    @app.get("/v1/rollout")
    async def rollout() -> dict[str, Any]:
        # Plus the state this replica routes by: replicas converge on the controller's (epoch, generation).
        view = await core.rollout.controller.view.remote()
        return {**view, "this_replica": {"replica": core.replica, **core.rollout.state.to_wire()}}

    @app.put("/v1/rollout")
    async def change_rollout(patch: RolloutPatch, request: Request) -> dict[str, Any]:
        caller: Caller = request.state.caller
        core.check_locations(patch.versions)
        before = await core.rollout.controller.view.remote()
        try:
            wire = await core.rollout.controller.update.remote(patch.model_dump())
        except ValueError as exc:
            reason = str(exc).strip().splitlines()[-1]
            audit("rollout change by %s refused: %s", caller.key_id, reason)
            raise ServiceError(422, reason) from None
        audit("rollout change by %s: %s -> %s", caller.key_id, rollout_summary(before), rollout_summary(wire))
        return core.rollout.adopt(wire).to_wire()

    def answered(answer: Answer, response: Response) -> PredictResponse:
        """The body, with the version that answered (and the canary it stood in for) as headers too."""
        response.headers[core.config.models.version_header] = answer.response.model_version
        if answer.fallback_from is not None:
            response.headers[FALLBACK_HEADER] = answer.fallback_from
        return answer.response

    if inspect.iscoroutinefunction(service.predict):

        @app.post("/v1/predict", response_model=PredictResponse)
        async def predict(body: PredictRequest, request: Request, response: Response) -> PredictResponse:
            return answered(await service.predict(body, request.headers), response)

    else:

        @app.post("/v1/predict", response_model=PredictResponse)
        def predict_sync(body: PredictRequest, request: Request, response: Response) -> PredictResponse:
            return answered(service.predict(body, request.headers), response)

    app.add_middleware(RequestGuard, keys=core.keys, max_body_bytes=core.config.service.max_body_bytes)
    return app


def _core(config: dict[str, Any], controller: Any) -> PredictionCore:
    return PredictionCore(InferenceConfig.model_validate(config), controller)


@serve.ingress()
class BatchedPredictionService:
    """Async handlers; the model sees batches formed by ``@serve.batch`` (runtime-tunable)."""

    def __init__(self, config: dict[str, Any], controller: Any):
        self.core = _core(config, controller)
        core = self.core
        # Fail at startup, not on the first request, if the stable version cannot load.
        warm = {core.rollout.state.stable: core.load(core.rollout.state.stable)}

        async def load_version(version: str) -> LoadedModel:
            return warm.pop(version, None) or await asyncio.to_thread(core.load, version)

        self._load = serve.multiplexed(max_num_models_per_replica=core.config.models.cache_size)(load_version)
        self._multiplexed_fn = load_version
        # @serve.batch forms batches; the coalescer joins those formed while the model runs into its next
        # call (see mlray.serve.coalesce). Every request the replica admits may be in a batch of its own,
        # so max_ongoing_requests batches may be in flight; reconfigure() sets the batching values.
        self._model_calls = CallCoalescer(self._predict_by_version)
        logging.getLogger("ray.serve").addFilter(HideBatchConcurrencyWarning())
        service = core.config.service
        self._run_batched = serve.batch(
            max_batch_size=service.batch_size,
            batch_wait_timeout_s=service.batch_wait_timeout_s,
            max_concurrent_batches=service.max_ongoing_requests,
        )(self._coalesce)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_api(self)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self._run_batched.set_max_batch_size(int(user_config["batch_size"]))
        self._run_batched.set_batch_wait_timeout_s(float(user_config["batch_wait_timeout_s"]))
        log.info("batching: max_batch_size=%s batch_wait_timeout_s=%s", *user_config.values())

    def check_health(self) -> None:
        self.core.healthy()

    async def ensure_loaded(self, version: str) -> LoadedModel:
        return await self._load(version)

    def batching(self) -> dict[str, float]:
        return {
            "max_batch_size": self._run_batched._get_max_batch_size(),
            "batch_wait_timeout_s": self._run_batched._get_batch_wait_timeout_s(),
        }

    def loaded(self) -> dict[str, LoadedModel]:
        wrapper = getattr(self._multiplexed_fn, "__serve_multiplex_wrapper", None)
        return dict(wrapper.models) if wrapper is not None else {}

    async def predict(self, body: PredictRequest, headers: Mapping[str, str]) -> Answer:
        version = self.core.choose_version(headers)
        try:
            return Answer(await self._predict_with(version, body))
        except ModelFailed as failure:
            stable = self.core.fallback_for(failure, headers)
            if stable is None:
                raise
            return Answer(await self._predict_with(stable, body), fallback_from=version)

    async def _predict_with(self, version: str, body: PredictRequest) -> PredictResponse:
        started = time.perf_counter()
        try:
            model = await self._load(version)
        except ServiceError:
            raise
        except Exception as exc:  # noqa: BLE001 - a version that will not load is that version's failure
            raise self.core.failed(version, started, exc) from exc
        # A version's first request here waits for its load: a one-off, not its serving latency (canary rules).
        started = time.perf_counter()
        prepared = self.core.prepare(version, model, body, started)
        result = await self._run_batched(version, prepared.rows)
        if isinstance(result, BaseException):
            raise self.core.failed(version, started, result)
        return self.core.succeeded(prepared, body, result)

    async def _coalesce(self, versions: list[str], rows: list[torch.Tensor]) -> list[Any]:
        """A batch formed by @serve.batch, run in the next model call along with others formed meanwhile."""
        return await self._model_calls.run(list(zip(versions, rows)), self._run_batched._get_max_batch_size())

    async def _predict_by_version(self, requests: list[tuple[str, torch.Tensor]]) -> list[Any]:
        """One model call per version among ``requests``; a failing version fails only its own requests."""
        results: list[Any] = [None] * len(requests)
        for version in dict.fromkeys(version for version, _ in requests):
            members = [i for i, (v, _) in enumerate(requests) if v == version]
            self.core.metrics.batch(version, len(members))
            try:
                model = await self._load(version)
                # Off the event loop: the replica keeps reading and answering requests while torch computes.
                predictions = await asyncio.to_thread(model.predict, torch.cat([requests[i][1] for i in members]))
            except Exception as exc:  # noqa: BLE001 - handed to each request of this version
                for i in members:
                    results[i] = exc
                continue
            offset = 0
            for i in members:
                row_count = len(requests[i][1])
                results[i] = predictions[offset : offset + row_count]
                offset += row_count
        return results


@serve.ingress()
class SyncPredictionService:
    """Plain synchronous handlers (FastAPI's thread pool), one model call per request."""

    def __init__(self, config: dict[str, Any], controller: Any):
        self.core = _core(config, controller)
        self.cache = VersionCache(self.core.load, self.core.config.models.cache_size)
        self.cache.get(self.core.rollout.state.stable)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_api(self)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Batching settings do not apply to the sync deployment."""

    def check_health(self) -> None:
        self.core.healthy()

    async def ensure_loaded(self, version: str) -> LoadedModel:
        return await asyncio.to_thread(self.cache.get, version)

    def batching(self) -> None:
        return None

    def loaded(self) -> dict[str, LoadedModel]:
        return self.cache.loaded()

    def predict(self, body: PredictRequest, headers: Mapping[str, str]) -> Answer:
        version = self.core.choose_version(headers)
        try:
            return Answer(self._predict_with(version, body))
        except ModelFailed as failure:
            stable = self.core.fallback_for(failure, headers)
            if stable is None:
                raise
            return Answer(self._predict_with(stable, body), fallback_from=version)

    def _predict_with(self, version: str, body: PredictRequest) -> PredictResponse:
        started = time.perf_counter()
        try:
            model = self.cache.get(version)
            started = time.perf_counter()  # after the version's one-off load, as in the batched deployment
            prepared = self.core.prepare(version, model, body, started)
            predictions = model.predict(prepared.rows)
        except ServiceError:
            raise
        except Exception as exc:  # noqa: BLE001 - counted against the version, answered 500
            raise self.core.failed(version, started, exc) from exc
        return self.core.succeeded(prepared, body, predictions)


__all__ = ["BatchedPredictionService", "SyncPredictionService", "build_api"]
