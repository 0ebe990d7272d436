"""The ``Predictor`` protocol both prediction deployments follow; the one canary fallback (``core.answer``)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

import pytest

from mlray.serve.api.schemas import PredictRequest, PredictResponse
from mlray.serve.prediction.core import ModelFailed, Predictor, answer
from mlray.serve.prediction.service import BatchedPredictionService, SyncPredictionService

ASYNC_MEMBERS = {"predict_with", "ensure_loaded"}


@pytest.mark.parametrize("deployment", [BatchedPredictionService, SyncPredictionService])
def test_both_deployments_have_every_member_of_the_protocol_async_where_it_is(deployment: type) -> None:
    members = {name for name in vars(Predictor) if not name.startswith("_")}
    assert members == {"predict_with", "ensure_loaded", "batching", "loaded"}
    for name in members:
        method = getattr(deployment, name)
        assert inspect.iscoroutinefunction(method) == (name in ASYNC_MEMBERS), name


class FakeCore:
    def __init__(self, chosen: str, stable: str, fallback: bool = True):
        self.chosen, self.stable, self.fallback = chosen, stable, fallback
        self.fallbacks: list[str] = []

    def choose_version(self, headers: Mapping[str, str]) -> str:
        return headers.get("pin", self.chosen)

    def fallback_for(self, failure: ModelFailed, headers: Mapping[str, str]) -> str | None:
        if not self.fallback or failure.version == self.stable or "pin" in headers:
            return None
        self.fallbacks.append(failure.version)
        return self.stable


class FakePredictor:
    def __init__(self, core: FakeCore, failing: set[str]):
        self.core = core
        self.failing = failing
        self.calls: list[str] = []

    async def predict_with(self, version: str, body: PredictRequest) -> PredictResponse:
        self.calls.append(version)
        if version in self.failing:
            raise ModelFailed(version, f"model version {version} failed: RuntimeError")
        return PredictResponse(predictions=[], model_version=version, metadata={})


def run(predictor: Any, headers: Mapping[str, str] | None = None) -> Any:
    return asyncio.run(answer(predictor, PredictRequest(instances=[[1.0]]), headers or {}))


def test_a_canary_failure_is_answered_by_stable_once_naming_the_canary() -> None:
    predictor = FakePredictor(FakeCore("canary", "stable"), failing={"canary"})
    got = run(predictor)
    assert (got.response.model_version, got.fallback_from) == ("stable", "canary")
    assert predictor.calls == ["canary", "stable"] and predictor.core.fallbacks == ["canary"]


def test_no_fallback_when_stable_fails_when_pinned_or_when_turned_off() -> None:
    for core, headers in [(FakeCore("stable", "stable"), {}), (FakeCore("canary", "stable"), {"pin": "canary"}),
                          (FakeCore("canary", "stable", fallback=False), {})]:
        predictor = FakePredictor(core, failing={"canary", "stable"})
        with pytest.raises(ModelFailed):
            run(predictor, headers)
        assert len(predictor.calls) == 1


def test_an_answer_without_failure_has_no_fallback() -> None:
    got = run(FakePredictor(FakeCore("canary", "stable"), failing=set()))
    assert (got.response.model_version, got.fallback_from) == ("canary", None)
