"""The two prediction deployments: the Serve ingress classes the application runs, batched or plain.

``BatchedPredictionService`` runs the model through ``@serve.batch`` with a ``serve.multiplexed`` LRU of
versions; ``SyncPredictionService`` is the plain synchronous variant (no batching), selected by
``service.mode: sync``. Both follow ``mlray.serve.prediction.core.Predictor``: the HTTP API of
``mlray.serve.api.ingress`` calls ``predict_with`` (async in both) through ``core.answer``, which also falls
back to stable; everything but the model call is shared in ``PredictionCore``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from fastapi import FastAPI
from ray import serve
from starlette.concurrency import run_in_threadpool

from mlray.config.inference import InferenceConfig
from mlray.ray_private import multiplexed_models, serve_batch_settings
from mlray.serve.api.ingress import build_api
from mlray.serve.api.schemas import PredictRequest, PredictResponse
from mlray.serve.prediction.coalesce import CallCoalescer, HideBatchConcurrencyWarning
from mlray.serve.prediction.core import PredictionCore, ServiceError
from mlray.serve.prediction.versions import LoadedModel

log = logging.getLogger(__name__)


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
        # call (see mlray.serve.prediction.coalesce). Every request the replica admits may be in a batch of its
        # own, so max_ongoing_requests batches may be in flight; reconfigure() sets the batching values.
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
        max_batch_size, batch_wait_timeout_s = serve_batch_settings(self._run_batched)
        return {"max_batch_size": max_batch_size, "batch_wait_timeout_s": batch_wait_timeout_s}

    def loaded(self) -> dict[str, LoadedModel]:
        return multiplexed_models(self._multiplexed_fn)

    async def predict_with(self, version: str, body: PredictRequest) -> PredictResponse:
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
        max_batch_size, _ = serve_batch_settings(self._run_batched)
        return await self._model_calls.run(list(zip(versions, rows)), max_batch_size)

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

    async def predict_with(self, version: str, body: PredictRequest) -> PredictResponse:
        # Blocking (model load, torch): in the thread pool FastAPI runs a plain route in, as before.
        return await run_in_threadpool(self._predict_blocking, version, body)

    def _predict_blocking(self, version: str, body: PredictRequest) -> PredictResponse:
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


class VersionCache:
    """Thread-safe LRU of loaded versions for the sync deployment (serve.multiplexed is async-only)."""

    def __init__(self, load: Callable[[str], LoadedModel], capacity: int):
        self.load = load
        self.capacity = capacity
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: str) -> LoadedModel:
        with self._lock:
            if version in self._models:
                self._models.move_to_end(version)
                return self._models[version]
        loaded = self.load(version)
        with self._lock:
            self._models[version] = loaded
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return loaded

    def loaded(self) -> dict[str, LoadedModel]:
        with self._lock:
            return dict(self._models)


__all__ = ["BatchedPredictionService", "SyncPredictionService", "VersionCache"]
