"""Request and response bodies of the HTTP API (they also make the OpenAPI docs)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

# On an answer stable gave in place of a canary that failed the request (rollout.fallback_to_stable): the canary.
FALLBACK_HEADER = "x-mlray-canary-fallback"
# Models take float32 rows: a larger magnitude would become inf there, and NaN in the answer.
FLOAT32_MAX = 3.4028234663852886e38


def feature_number(value: Any, expected: str = "a number") -> int | float:
    """A JSON number usable as a float32 feature: no booleans, no NaN/inf, nothing that overflows."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected {expected}, got {type(value).__name__}")
    try:
        magnitude = abs(float(value))
    except OverflowError:  # an integer beyond any float
        magnitude = math.inf
    if math.isnan(magnitude):
        raise ValueError("expected a finite number, got NaN")
    if magnitude > FLOAT32_MAX:
        raise ValueError(f"number out of range: features are float32, finite and at most {FLOAT32_MAX:.4g} in size")
    return value


def named_value(value: Any) -> Any:
    """A named instance's value: a feature number, or a string (an entity key)."""
    return value if isinstance(value, str) else feature_number(value, "a number or a string")


FeatureValue = Annotated[float, BeforeValidator(feature_number)]
FeatureVector = list[FeatureValue]
# int stays int: entity keys such as driver_id 1001 must reach the enricher as written.
NamedInstance = dict[str, Annotated[int | float | str, BeforeValidator(named_value)]]
INSTANCE_KINDS = ("vector", "named")


def instance_kind(value: Any) -> str | None:
    return "vector" if isinstance(value, list) else "named" if isinstance(value, dict) else None


Instance = Annotated[
    Annotated[FeatureVector, Tag("vector")] | Annotated[NamedInstance, Tag("named")],
    Discriminator(
        instance_kind,
        custom_error_type="instance_type",
        custom_error_message="expected a list of numbers (a feature vector) or an object of features by name",
    ),
]


def public_location(location: tuple[int | str, ...] | list[int | str]) -> list[int | str]:
    """An error location without the instance kind pydantic inserts: body.instances.0.conv_rate."""
    parts = list(location)
    if parts[:2] == ["body", "instances"] and len(parts) > 3 and parts[3] in INSTANCE_KINDS:
        del parts[3]
    return parts


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instances: list[Instance] = Field(
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
