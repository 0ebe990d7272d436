"""Request and response bodies of the HTTP API (they also make the OpenAPI docs)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
FeatureVector = list[FiniteFloat]
NamedInstance = dict[str, FiniteFloat | int | str]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: list[FeatureVector | NamedInstance] = Field(
        min_length=1,
        description=(
            "Feature vectors in the model's feature order, objects keyed by feature name, "
            "or objects with entity keys (enriched by the configured feature store)."
        ),
        examples=[[[0.8, 0.9, 12.0, 3.2], {"driver_id": 1001, "trip_distance_km": 3.2}]],
    )


class PredictResponse(BaseModel):
    predictions: list[Any] = Field(
        description="Per instance: {label, probabilities} (classification) or a number (regression)."
    )
    model_version: str
    metadata: dict[str, Any] = {}


class RolloutPatch(BaseModel):
    """PUT /v1/rollout: change the rollout at runtime; omitted fields stay."""

    model_config = ConfigDict(extra="forbid")

    canary: str | None = None
    canary_weight: Annotated[float, Field(ge=0, le=1)] | None = None
    stable: str | None = None
    versions: dict[str, str] | None = Field(default=None, description="New or changed version locations.")
    clear_canary: bool = False


class ModelsView(BaseModel):
    stable: str
    canary: str | None
    canary_weight: float
    versions: dict[str, str]
    loaded_here: dict[str, list[str]] = Field(description="Versions cached in the answering replica: features.")
    version_header: str
    replica: str = Field(description="The Serve replica that answered.")
    batching: dict[str, float] | None = Field(description="Batching in effect here; null for the sync deployment.")
