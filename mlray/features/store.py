"""Opening the configured Feast store, and applying the definitions to it.

The repository's ``feature_store*.yaml`` is read with Feast's own rules
(``$VARS`` expanded, validated by ``RepoConfig``); ``repo.state_dir`` can move a
local registry and SQLite online store elsewhere (tests, a second checkout)
without editing the file.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from feast import FeatureStore, RepoConfig
from feast.repo_config import FeastConfigError
from google.protobuf.message import Message
from pydantic import ValidationError

from mlray.config.features import FeaturesConfig, FeatureSourcesSection
from mlray.features.definitions import FeatureDefinitions, build_definitions
from mlray.features.validation import check_view_source

log = logging.getLogger(__name__)

REGISTRY_FILE = "registry.db"
# What os.path.expandvars leaves behind when a variable is unset.
UNSET_VARIABLE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")
ONLINE_STORE_FILE = "online_store.db"


def is_url(path: str) -> bool:
    return "://" in path


def store_yaml_path(config: FeaturesConfig) -> Path:
    return Path(config.repo.path) / config.repo.store_yaml


def raw_store_config(config: FeaturesConfig) -> dict[str, Any]:
    """The store YAML as Feast reads it, with ``repo.state_dir`` applied."""
    path = store_yaml_path(config)
    if not path.is_file():
        raise FileNotFoundError(f"feature store config {path} not found (repo.path / repo.store_yaml)")
    raw = yaml.safe_load(os.path.expandvars(path.read_text()))
    unset = sorted(set(UNSET_VARIABLE.findall(yaml.safe_dump(raw))))  # values only, not comments
    if unset:
        raise ValueError(f"feature store config {path}: environment variables {unset} are not set")
    state_dir = state_location(config)
    if state_dir is not None:
        registry_path = f"{state_dir.rstrip('/')}/{REGISTRY_FILE}"
        registry = raw.get("registry")
        if isinstance(registry, str) and not is_url(registry):
            raw["registry"] = registry_path
        elif isinstance(registry, dict) and not is_url(str(registry.get("path", ""))):
            raw["registry"] = {**registry, "path": registry_path}
        online = raw.get("online_store") or {"type": "sqlite"}
        if online.get("type", "sqlite") == "sqlite":
            if is_url(state_dir):
                raise ValueError(
                    f"repo.state_dir: the SQLite online store needs a local folder, got {state_dir} (a gs:// "
                    "storage.uri puts a relative state_dir there): set repo.state_dir to an absolute local "
                    "path, or use a remote online store (feature_store.gcp.yaml)"
                )
            raw["online_store"] = {**online, "path": str(Path(state_dir) / ONLINE_STORE_FILE)}
    return raw


def state_location(config: FeaturesConfig) -> str | None:
    """``repo.state_dir`` as a URI (relative ones under ``storage.uri``), or None."""
    if config.repo.state_dir is None:
        return None
    return config.storage.location(config.repo.state_dir)


def repo_config(config: FeaturesConfig) -> RepoConfig:
    """Feast's validated config of the configured repository and store file."""
    raw = raw_store_config(config)
    try:
        repo = RepoConfig(**raw)
    except ValidationError as exc:
        raise FeastConfigError(exc, str(store_yaml_path(config))) from None
    repo.repo_path = Path(config.repo.path).resolve()
    return repo


def render_store_yaml(config: FeaturesConfig, destination: Path) -> Path:
    """Write the effective store YAML, for ``feast -c <repo> -f <destination> ...``."""
    destination.write_text(yaml.safe_dump(raw_store_config(config), sort_keys=False))
    return destination


def resolved_sources(config: FeaturesConfig) -> FeatureSourcesSection:
    """Sources with $VARS expanded and a relative folder placed under ``storage.uri``,
    so every process reads the same files whatever its working directory."""
    sources = config.sources
    location = os.path.expandvars(sources.location)
    if sources.kind == "file":
        location = config.storage.location(location)
    return sources.model_copy(update={"location": location})


def definitions(config: FeaturesConfig) -> FeatureDefinitions:
    return build_definitions(resolved_sources(config))


def open_store(config: FeaturesConfig) -> FeatureStore:
    repo = repo_config(config)
    state_dir = state_location(config)
    if state_dir is not None and not is_url(state_dir):
        Path(state_dir).mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(repo.repo_path), config=repo)  # else Feast resolves the registry against the cwd


# What the registry adds or re-encodes: creation times and materialized intervals
# (meta), inferred entity columns, and the pickled UDF (its source, body_text, stays).
NOT_DEFINITION_FIELDS = frozenset({"meta", "entity_columns", "body"})


def definition_only(message: Message) -> Message:
    """``message`` with every nested field the registry fills in itself cleared."""
    for field, value in message.ListFields():
        if field.name in NOT_DEFINITION_FIELDS:
            message.ClearField(field.name)
        elif field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                children = list(value.values()) if value_field.message_type is not None else []
            else:
                children = list(value) if field.is_repeated else [value]
            for child in children:
                definition_only(child)
    return message


def spec_bytes(feast_object: Any) -> bytes:
    """The object's definition without registry bookkeeping, comparable across processes."""
    proto = feast_object.to_proto()
    spec = proto.spec if "spec" in proto.DESCRIPTOR.fields_by_name else proto  # data sources have no spec
    return definition_only(spec).SerializeToString(deterministic=True)


def registered_spec(store: FeatureStore, feast_object: Any) -> bytes | None:
    getter = {
        "Entity": store.get_entity,
        "FeatureView": store.get_feature_view,
        "OnDemandFeatureView": store.get_on_demand_feature_view,
        "FeatureService": store.get_feature_service,
        "RequestSource": store.get_data_source,
    }.get(type(feast_object).__name__, store.get_data_source)
    try:
        return spec_bytes(getter(feast_object.name))
    except Exception:  # noqa: BLE001 - Feast raises a different *NotFound class per object kind
        return None


def changed_objects(store: FeatureStore, defs: FeatureDefinitions) -> list[str]:
    """Names of the definitions that the registry lacks or holds in another version."""
    return [obj.name for obj in defs.objects() if registered_spec(store, obj) != spec_bytes(obj)]


def apply_definitions(store: FeatureStore, defs: FeatureDefinitions, mode: str = "if_changed") -> list[str]:
    """``feast apply`` the definitions (all of them, when any changed); returns what changed."""
    if mode == "never":
        return []
    changed = [obj.name for obj in defs.objects()] if mode == "always" else changed_objects(store, defs)
    if changed:
        log.info("feast apply: %s", changed)
        store.apply(defs.objects())
    return changed


def check_sources(defs: FeatureDefinitions) -> None:
    """Every feature view's source exists and has its fields (FeatureSourceError otherwise)."""
    for view in defs.feature_views():
        check_view_source(view, defs.entities())


@dataclass(frozen=True)
class PreparedStore:
    store: FeatureStore
    definitions: FeatureDefinitions
    applied: list[str]


def prepare_store(config: FeaturesConfig, apply: str | None = None) -> PreparedStore:
    """Sources checked, store opened, definitions applied (``materialize.apply`` unless ``apply``)."""
    defs = definitions(config)
    check_sources(defs)
    store = open_store(config)
    applied = apply_definitions(store, defs, apply or config.materialize.apply)
    return PreparedStore(store, defs, applied)
