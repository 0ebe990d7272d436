"""Turning request instances into model input rows, with optional feature enrichment.

An instance is either a full feature vector (``[0.4, 0.9, 12, 3.2]``, in the
model's ``feature_names`` order), an object with every feature by name, or an
object carrying entity keys plus the request-time features
(``{"driver_id": 1001, "trip_distance_km": 3.2}``). The last kind goes through
the configured ``FeatureEnricher`` (``features.enricher`` in
configs/inference.yaml), which looks the stored features up.

The enricher contract (implemented by the feature store in ``mlray.features``):

* a factory, named by import path, called with ``features.kwargs``;
* ``enrich(instances: list[dict]) -> (rows, metadata)``: one row of floats per
  instance, in the model's ``feature_names`` order; ``metadata`` (for example
  feature freshness) is returned to the client under ``metadata.features``;
* raise ``UnknownEntityError`` (a ``KeyError``) for an entity it does not
  know: the client gets ``features.unknown_entity_status`` (404 by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from mlray.config.inference import FeaturesSection
from mlray.imports import import_object

Instance = Sequence[float] | Mapping[str, Any]


@runtime_checkable
class FeatureEnricher(Protocol):
    def enrich(self, instances: list[dict[str, Any]]) -> tuple[list[list[float]], dict[str, Any]]: ...


class UnknownEntityError(KeyError):
    """An instance names an entity the feature store has no features for."""


@dataclass
class InstanceError(ValueError):
    """Bad instances: one problem per offending field, located like pydantic's errors."""

    problems: list[dict[str, Any]]

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in self.problems)


def problem(index: int, message: str, *extra: str | int) -> dict[str, Any]:
    return {"loc": ["body", "instances", index, *extra], "msg": message, "type": "value_error"}


def build_enricher(section: FeaturesSection | None) -> FeatureEnricher | None:
    if section is None:
        return None
    enricher = import_object(section.enricher)(**section.kwargs)
    if not isinstance(enricher, FeatureEnricher):
        raise TypeError(f"features.enricher {section.enricher!r} built {type(enricher).__name__}, which has no enrich()")
    return enricher


@dataclass
class InstanceParser:
    feature_names: list[str]
    enricher: FeatureEnricher | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def rows(self, instances: Sequence[Instance]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Model input rows, and the enricher's metadata (empty if it was not needed).

        Raises ``InstanceError`` naming each bad instance before any model work,
        and lets ``UnknownEntityError`` through for the caller to map.
        """
        width = len(self.feature_names)
        rows: list[list[float] | None] = []
        to_enrich: dict[int, dict[str, Any]] = {}
        problems: list[dict[str, Any]] = []
        for index, instance in enumerate(instances):
            if isinstance(instance, Mapping):
                missing = [name for name in self.feature_names if name not in instance]
                if not missing:
                    rows.append(self._named_row(index, instance, problems))
                    continue
                if self.enricher is None:
                    problems.append(problem(index, f"missing features {missing}; expected all of {self.feature_names}"))
                else:
                    to_enrich[index] = dict(instance)
                rows.append(None)
            elif len(instance) != width:
                problems.append(
                    problem(index, f"expected {width} values ({', '.join(self.feature_names)}), got {len(instance)}")
                )
                rows.append(None)
            else:
                rows.append([float(value) for value in instance])
        if problems:
            raise InstanceError(problems)
        metadata: dict[str, Any] = {}
        if to_enrich:
            assert self.enricher is not None
            enriched, metadata = self.enricher.enrich(list(to_enrich.values()))
            for index, row in zip(to_enrich, enriched, strict=True):
                if len(row) != width:
                    raise ValueError(f"enricher returned {len(row)} values for instance {index}, model takes {width}")
                rows[index] = [float(value) for value in row]
        return torch.tensor(rows, dtype=torch.float32), metadata

    def _named_row(self, index: int, instance: Mapping[str, Any], problems: list[dict[str, Any]]) -> list[float]:
        row = []
        for name in self.feature_names:
            value = instance[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(problem(index, f"expected a finite number, got {value!r}", name))
                row.append(math.nan)
            else:
                row.append(float(value))
        return row


class InMemoryEnricher:
    """Features from a fixed table keyed by one entity column: demos and tests.

    ``table`` maps entity id (as a string) to stored features; the instance's
    own values (request-time features such as ``trip_distance_km``) win.
    """

    def __init__(self, entity_key: str, feature_names: list[str], table: Mapping[Any, Mapping[str, float]]):
        self.entity_key = entity_key
        self.feature_names = list(feature_names)
        self.table = {str(key): dict(values) for key, values in table.items()}

    def enrich(self, instances: list[dict[str, Any]]) -> tuple[list[list[float]], dict[str, Any]]:
        rows = []
        for instance in instances:
            if self.entity_key not in instance:
                raise UnknownEntityError(f"instance has no {self.entity_key!r}")
            entity = str(instance[self.entity_key])
            if entity not in self.table:
                raise UnknownEntityError(f"{self.entity_key}={entity} is unknown")
            merged = {**self.table[entity], **instance}
            missing = [name for name in self.feature_names if name not in merged]
            if missing:
                raise UnknownEntityError(f"{self.entity_key}={entity} has no {missing}")
            rows.append([float(merged[name]) for name in self.feature_names])
        return rows, {"source": "in_memory", "entities": len(instances)}
