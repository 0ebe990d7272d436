"""Building blocks shared by every config model.

Every config file maps onto one pydantic model (see ``mlray.config.models``).
Those models are strict: unknown keys, wrong types and impossible values are
errors, so a typo fails before any work starts instead of being ignored.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class ConfigModel(BaseModel):
    """Base of all mlray config sections: strict and validated on assignment."""

    model_config = ConfigDict(
        extra="forbid",
        strict=False,
        validate_assignment=True,
        validate_default=True,
        # Fields named model_* (model_version, model_path) are ours, not pydantic's.
        protected_namespaces=(),
    )
