"""What a feature service needs from its caller and gives back, in a fixed order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from feast import FeatureService, FeatureStore
from feast.errors import FeastObjectNotFoundException

from mlray.features.store import spec_bytes


@dataclass(frozen=True)
class ServiceLayout:
    name: str
    version: str
    join_keys: list[str]  # entity keys a caller supplies
    request_fields: list[str]  # request-time values a caller supplies
    stored_features: list[str]  # looked up in the store
    derived_features: list[str]  # computed by on-demand views

    @property
    def feature_names(self) -> list[str]:
        """Model inputs: stored features, then request fields, then on-demand outputs."""
        return self.stored_features + self.request_fields + self.derived_features


def service_version(service: FeatureService) -> str:
    """A stable short hash of what the service serves (views, features, types)."""
    return hashlib.sha256(spec_bytes(service)).hexdigest()[:12]


def get_service(store: FeatureStore, name: str) -> FeatureService:
    try:
        return store.get_feature_service(name)
    except FeastObjectNotFoundException:
        known = sorted(service.name for service in store.list_feature_services())
        raise ValueError(f"feature_service: {name!r} is not in the feature store (it has {known})") from None


def service_layout(store: FeatureStore, service: FeatureService) -> ServiceLayout:
    views = {view.name: view for view in store.list_feature_views()}
    on_demand = {view.name: view for view in store.list_on_demand_feature_views()}
    join_keys: list[str] = []
    request_fields: list[str] = []
    stored: list[str] = []
    derived: list[str] = []
    for projection in service.feature_view_projections:
        names = [feature.name for feature in projection.features]
        if projection.name in views:
            join_keys += [key for key in views[projection.name].join_keys if key not in join_keys]
            stored += names
        else:
            for source in on_demand[projection.name].source_request_sources.values():
                request_fields += [field.name for field in source.schema if field.name not in request_fields]
            derived += names
    return ServiceLayout(
        name=service.name,
        version=service_version(service),
        join_keys=join_keys,
        request_fields=request_fields,
        stored_features=stored,
        derived_features=derived,
    )
