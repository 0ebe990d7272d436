"""What both prediction deployments share: the ``Predictor`` protocol, auth, version choice, input rows,
the canary fallback, bookkeeping.

The async (batched) and the sync deployment differ only in how they run the model
(``Predictor.predict_with``); everything before (who may call, which version, which rows) and after (the
fallback to stable, figures for the rollout, metrics, sampled logging) happens here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from mlray.config.inference import InferenceConfig
from mlray.metrics.serve import ServeMetrics
from mlray.models.trust import LoadPolicy, UntrustedModel
from mlray.process_env import apply as apply_env
from mlray.process_env import mlflow_env
from mlray.serve.api.auth import ApiKeys, serve_http_host
from mlray.serve.api.schemas import PredictRequest, PredictResponse
from mlray.serve.prediction.background import Ticker
from mlray.serve.prediction.features import InstanceError, InstanceParser, UnknownEntityError, build_enricher
from mlray.serve.prediction.log import PredictionLog
from mlray.serve.prediction.versions import LoadedModel, load_model_version
from mlray.serve.rollout.canary import RolloutState
from mlray.serve.rollout.client import RolloutClient
from mlray.storage.locations import resolve_location

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An answer other than 200, with the body's ``detail``."""

    def __init__(self, status_code: int, detail: Any, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers


class ModelFailed(ServiceError):
    """A version failed a request on the server side (its model raised, or it would not load): a 500."""

    def __init__(self, version: str, detail: str):
        super().__init__(500, detail)
        self.version = version


@dataclass(frozen=True)
class Answer:
    """A prediction and, when stable gave it in place of a canary that failed the request, that canary."""

    response: PredictResponse
    fallback_from: str | None = None


@dataclass
class Prepared:
    version: str
    model: LoadedModel
    rows: torch.Tensor
    metadata: dict[str, Any]
    started: float


class Predictor(Protocol):
    """What the HTTP API (``mlray.serve.api.ingress``) needs of a prediction deployment; both kinds follow it.

    ``BatchedPredictionService`` runs the model through ``@serve.batch`` on the event loop's side,
    ``SyncPredictionService`` in the thread pool a plain FastAPI route would use; to the API both are async.
    """

    core: PredictionCore

    async def predict_with(self, version: str, body: PredictRequest) -> PredictResponse:
        """``body`` predicted by ``version``; ``ModelFailed`` when that version fails it on the server side."""
        ...

    async def ensure_loaded(self, version: str) -> LoadedModel:
        """``version`` loaded on this replica (loading it first if needed)."""
        ...

    def batching(self) -> dict[str, float] | None:
        """The batching settings in force, or None where the deployment does not batch."""
        ...

    def loaded(self) -> dict[str, LoadedModel]:
        """The versions this replica holds now."""
        ...


async def answer(predictor: Predictor, body: PredictRequest, headers: Mapping[str, str]) -> Answer:
    """The version ``headers`` choose predicts ``body``; a canary's server-side failure is answered by stable
    (``PredictionCore.fallback_for``), at most once per request."""
    core = predictor.core
    version = core.choose_version(headers)
    try:
        return Answer(await predictor.predict_with(version, body))
    except ModelFailed as failure:
        stable = core.fallback_for(failure, headers)
        if stable is None:
            raise
        return Answer(await predictor.predict_with(stable, body), fallback_from=version)


def load_policy(config: InferenceConfig) -> LoadPolicy:
    """``models.trust``: allowed factories, and roots (relative ones under ``storage.uri``, as versions)."""
    roots = tuple(resolve_location(root, config.storage.uri) for root in config.model_roots())
    return LoadPolicy(factories=tuple(config.models.trust.allowed_factories), roots=roots)


def replica_id() -> str:
    try:
        from ray import serve

        return serve.get_replica_context().replica_tag
    except Exception:  # noqa: BLE001 - outside Serve (unit tests)
        return f"pid{os.getpid()}"


class PredictionCore:
    def __init__(self, config: InferenceConfig, controller: Any):
        self.config = config
        self.keys = ApiKeys.load(config.auth)
        self.load_policy = load_policy(config)
        self.keys.require_keys_unless_loopback(serve_http_host())
        self.enricher = build_enricher(config.features)
        self.metrics = ServeMetrics(config.monitoring.enable_metrics)
        self.rollout = RolloutClient(controller, RolloutState.initial(config.models, config.rollout))
        self.replica = replica_id()
        self.prediction_log = PredictionLog(config.prediction_log, self.replica)
        self.ticker = Ticker(
            config.rollout.report_interval_s, [self.rollout.sync, self.prediction_log.flush_if_due]
        ).start()
        # The replica's share of the serve process env (mlray.process_env); Serve's own part acted when
        # Ray started. The config value wins.
        apply_env(mlflow_env(config))

    # -- before the model -----------------------------------------------------------
    def choose_version(self, headers: Mapping[str, str]) -> str:
        state = self.rollout.state
        pinned = headers.get(self.config.models.version_header)
        if pinned:
            if pinned not in state.versions:
                raise ServiceError(404, f"model version {pinned!r} not found; known: {sorted(state.versions)}")
            return pinned
        return self.rollout.choose(headers.get(self.config.rollout.sticky_header))

    def load(self, version: str) -> LoadedModel:
        """Read a version from storage or the registry (blocking; callers cache)."""
        location = self.rollout.state.versions.get(version)
        if location is None:
            raise ServiceError(404, f"model version {version!r} not found")
        started = time.perf_counter()
        loaded = load_model_version(
            version,
            resolve_location(location, self.config.storage.uri),
            policy=self.load_policy,
            mlflow_tracking_uri=self.config.mlflow.tracking_uri,
            feature_names=self.config.models.feature_names,
        )
        log.info("loaded model %s from %s in %.2f s", version, loaded.uri, time.perf_counter() - started)
        return loaded

    def check_locations(self, versions: Mapping[str, str] | None) -> None:
        """Version locations a request names must lie under the allowed roots: else 403 naming both."""
        resolved = {name: resolve_location(location, self.config.storage.uri)
                    for name, location in (versions or {}).items()}
        try:
            self.load_policy.check_locations(resolved)
        except UntrustedModel as exc:
            raise ServiceError(403, str(exc)) from None

    def prepare(self, version: str, model: LoadedModel, body: PredictRequest, started: float) -> Prepared:
        if len(body.instances) > self.config.service.max_instances:
            raise ServiceError(
                422,
                [{"loc": ["body", "instances"], "type": "too_long",
                  "msg": f"at most {self.config.service.max_instances} instances per request, got {len(body.instances)}"}],
            )
        parser = InstanceParser(model.feature_names, self.enricher)
        try:
            rows, metadata = parser.rows(body.instances)
        except InstanceError as exc:
            raise ServiceError(422, exc.problems) from None
        except UnknownEntityError as exc:
            raise ServiceError(self.config.features.unknown_entity_status, f"unknown entity: {exc.args[0]}") from None
        return Prepared(version, model, rows, {"features": metadata} if metadata else {}, started)

    # -- after the model ----------------------------------------------------------------
    def succeeded(self, prepared: Prepared, body: PredictRequest, predictions: list[Any]) -> PredictResponse:
        latency_ms = (time.perf_counter() - prepared.started) * 1000
        self.rollout.record(prepared.version, True, latency_ms)
        self.metrics.request(prepared.version, 200, latency_ms, self.rollout.state)
        self.prediction_log.maybe_record(prepared.version, body.instances, predictions, latency_ms)
        return PredictResponse(predictions=predictions, model_version=prepared.version, metadata=prepared.metadata)

    def failed(self, version: str, started: float, error: BaseException) -> ModelFailed:
        """A model failure: counts against the version (canary SLO) and becomes a 500."""
        latency_ms = (time.perf_counter() - started) * 1000
        self.rollout.record(version, False, latency_ms)
        self.metrics.request(version, 500, latency_ms, self.rollout.state)
        log.error("model %s failed: %s: %s", version, type(error).__name__, error)
        return ModelFailed(version, f"model version {version} failed: {type(error).__name__}")

    def fallback_for(self, failure: ModelFailed, headers: Mapping[str, str]) -> str | None:
        """The version to try a failed request on once more: stable, when the canary failed it; else None.

        The failed attempt is already counted against the canary (``failed``), so the rollout rules still see
        the canary's error rate while the client gets stable's answer. Judged against the state now, not the
        one the request was routed by: a canary rolled back meanwhile is still not stable, and once promoted
        it is, so a failure of stable is never retried (at most one retry per request). A version the client
        pinned is answered by that version or not at all.
        """
        stable = self.rollout.state.stable
        if (not self.config.rollout.fallback_to_stable or failure.version == stable
                or headers.get(self.config.models.version_header)):
            return None
        self.metrics.fallback(failure.version)
        return stable

    def rejected(self, version: str, error: ServiceError) -> None:
        self.metrics.request(version, error.status_code, 0.0, self.rollout.state)

    def healthy(self) -> None:
        if not self.ticker.alive:
            raise RuntimeError("the rollout sync thread stopped")
