"""Online enrichment for the Serve app: entity keys in, model input rows out.

Named in ``configs/inference.yaml``::

    features:
      enricher: mlray.features.online:OnlineFeatureEnricher
      kwargs:
        features_config: configs/features.yaml
        feature_service: driver_trips_v1
        feature_names: [conv_rate, acc_rate, avg_daily_trips, trip_distance_km]   # the model's order
      unknown_entity_status: 404

Serve builds one enricher per replica, so each replica holds its own
``FeatureStore`` (registry cache and online store connection).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from mlray.config.features import FeaturesConfig
from mlray.config.loader import load_config
from mlray.features.service import get_service, service_layout
from mlray.features.store import open_store
from mlray.metrics.features import OnlineFeatureMetrics, service_ttl_seconds
from mlray.serve.prediction.features import InstanceError, UnknownEntityError, problem


class OnlineFeatureEnricher:
    """``enrich(instances)``: each instance's entity keys and request fields -> one feature row."""

    def __init__(
        self,
        features_config: str = "configs/features.yaml",
        feature_service: str | None = None,
        feature_names: Sequence[str] | None = None,
        overrides: Sequence[str] = (),
    ):
        config = load_config(FeaturesConfig, features_config, overrides)
        self.store = open_store(config)
        self.service = get_service(self.store, feature_service or config.feature_service)
        self.layout = service_layout(self.store, self.service)
        self.feature_names = list(feature_names) if feature_names is not None else self.layout.feature_names
        unknown = [name for name in self.feature_names if name not in self.layout.feature_names]
        if unknown:
            raise ValueError(
                f"feature_names: {unknown} are not served by {self.layout.name!r} (it serves {self.layout.feature_names})"
            )
        self.inputs = self.layout.join_keys + self.layout.request_fields
        self.observed = OnlineFeatureMetrics(config.monitoring.enable_metrics, self.layout.name,
                                             service_ttl_seconds(self.store, self.service))

    def enrich(self, instances: list[dict[str, Any]]) -> tuple[list[list[float]], dict[str, Any]]:
        inputs = self.inputs
        entity_rows = []
        for instance in instances:
            try:
                entity_rows.append({name: instance[name] for name in inputs})
            except KeyError:
                raise InstanceError(self._missing_inputs(instances)) from None
        started = time.perf_counter()
        response = self.store.get_online_features(features=self.service, entity_rows=entity_rows).to_dict(
            include_event_timestamps=True
        )
        self._reject_unknown(entity_rows, response)
        columns = [
            response[name] if name in response else [instance[name] for instance in instances]
            for name in self.feature_names
        ]
        freshness = self._freshness(response)
        self.observed.lookup(time.perf_counter() - started, freshness["age_s"])
        return list(map(list, zip(*columns, strict=True))), freshness

    def _missing_inputs(self, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            problem(index, f"missing {name!r} (the feature service needs {self.inputs})", name)
            for index, instance in enumerate(instances)
            for name in self.inputs
            if name not in instance
        ]

    def _reject_unknown(self, entity_rows: list[dict[str, Any]], response: dict[str, list[Any]]) -> None:
        for name in self.layout.stored_features:
            if None in response[name]:
                row = entity_rows[response[name].index(None)]
                keys = ", ".join(f"{key}={row[key]}" for key in self.layout.join_keys)
                raise UnknownEntityError(f"{keys}: no features in the online store (feature service {self.layout.name!r})")

    def _freshness(self, response: dict[str, list[Any]]) -> dict[str, Any]:
        """When each row's oldest stored feature was observed, and how long ago."""
        now = time.time()
        oldest = list(map(min, zip(*(response[f"{name}__ts"] for name in self.layout.stored_features))))
        iso = {ts: datetime.fromtimestamp(ts, timezone.utc).isoformat() for ts in set(oldest)}
        return {
            "feature_service": self.layout.name,
            "feature_service_version": self.layout.version,
            "event_timestamps": [iso[ts] for ts in oldest],
            "age_s": [round(now - ts, 3) for ts in oldest],
        }
