"""Building blocks shared by every config model.

Every config file maps onto one pydantic model (``mlray.config.registry``; a job's through the jobs
table, ``mlray.config.jobs``).
Those models are strict: unknown keys, wrong types and impossible values are
errors, so a typo fails before any work starts instead of being ignored.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]

RUN_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _check_run_name(value: str) -> str:
    # A run name becomes a folder under storage.uri and output.dir: no '/' and no '..' may escape them.
    if not RUN_NAME_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(
            "expected 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'"
        )
    return value


RunName = Annotated[str, AfterValidator(_check_run_name)]
"""The name of a job's run: used by every config that has a ``run_name``."""


def _value_types(annotation: Any) -> set[Any]:
    """The plain types a field takes: ``PositiveInt | None`` -> {int, NoneType}."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _value_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_value_types(arg) for arg in typing.get_args(annotation)))
    return {annotation}


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

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_true_or_false(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would read "yes", "off", 1 or "0" as booleans and true as the number 1; in a config that is
        # a misreading waiting to happen, so booleans and numbers don't stand in for each other
        # (override strings are parsed by YAML rules first, so "true" from the environment is a boolean).
        if value is None or info.field_name is None:
            return value
        accepted = _value_types(cls.model_fields[info.field_name].annotation) - {type(None)}
        if accepted == {bool} and not isinstance(value, bool):
            raise PydanticCustomError("bool_type", "expected true or false")
        if isinstance(value, bool) and accepted & {int, float} and bool not in accepted:
            raise PydanticCustomError("bool_type", "expected a number, not true or false")
        return value
