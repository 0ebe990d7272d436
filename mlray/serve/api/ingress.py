"""The HTTP API (FastAPI) that both prediction deployments (``mlray.serve.prediction.service``) serve.

Routes (the same for both deployments; docs at ``/docs``, schema at ``/openapi.json``):

* ``POST /v1/predict``  ``{"instances": [...]}`` -> ``{"predictions", "model_version", "metadata"}``; the version
  that answered is also in the ``models.version_header`` header. A request the canary fails with a server error
  is answered by stable (``rollout.fallback_to_stable``; header ``x-mlray-canary-fallback``: the canary)
* ``GET /v1/models``    versions, stable, canary, what this replica has loaded
* ``GET /v1/rollout``   rollout state and per-version figures; ``PUT`` changes it at runtime
* ``GET /healthz``      liveness (open);  ``GET /readyz``  stable model loaded (open)

Every other route needs an API key, whatever the route prefix or root path (see mlray.serve.api.auth);
``PUT /v1/rollout`` needs an admin key and each change is logged with the caller's key id.

The API is built per replica by ``build_api(service)`` from the deployment's ``__serve_build_asgi_app__``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette._utils import get_route_path  # the router's own reading of the path: the guard must match it
from starlette.types import ASGIApp, Receive, Scope, Send

from mlray.serve.api.auth import AccessDenied, ApiKeys, Caller, required_scope
from mlray.serve.api.schemas import (
    FALLBACK_HEADER,
    ModelsView,
    PredictRequest,
    PredictResponse,
    RolloutPatch,
    public_location,
)
from mlray.serve.prediction.core import Answer, Predictor, ServiceError, answer

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


def build_api(service: Predictor) -> FastAPI:
    """The API of one replica of a prediction deployment (either kind: ``Predictor``)."""
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

    def answered(result: Answer, response: Response) -> PredictResponse:
        """The body, with the version that answered (and the canary it stood in for) as headers too."""
        response.headers[core.config.models.version_header] = result.response.model_version
        if result.fallback_from is not None:
            response.headers[FALLBACK_HEADER] = result.fallback_from
        return result.response

    @app.post("/v1/predict", response_model=PredictResponse)
    async def predict(body: PredictRequest, request: Request, response: Response) -> PredictResponse:
        return answered(await answer(service, body, request.headers), response)

    app.add_middleware(RequestGuard, keys=core.keys, max_body_bytes=core.config.service.max_body_bytes)
    return app


__all__ = ["RequestGuard", "build_api"]
