"""Schema validation of manifests, offline, as strictly as ``kubectl apply --validate=strict``.

Custom resources (RayCluster, RayJob, RayService, PodMonitor, ServiceMonitor)
are checked against their CRD's ``openAPIV3Schema``. The API server prunes or
rejects fields a structural schema doesn't declare, but plain JSON Schema
accepts them, so every object schema that declares ``properties`` and doesn't
opt out with ``x-kubernetes-preserve-unknown-fields`` gets
``additionalProperties: false``. Built-in kinds go through the
``kubernetes-validate`` package's strict schemas, which also supply
``ObjectMeta`` for the custom resources' top-level ``metadata``.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml

from mlray.kuberay.problems import Problem, format_path, object_name

Schema = dict[str, Any]

RAY_CRD_FILES = ("ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml")
MONITORING_CRD_FILES = (
    "monitoring.coreos.com_podmonitors.yaml",
    "monitoring.coreos.com_servicemonitors.yaml",
)
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def strict(schema: Any) -> Any:
    """A copy of a structural schema that rejects unknown fields, as the API server does."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items() if key != "properties"}
    if "properties" in schema:
        result["properties"] = {name: strict(value) for name, value in schema["properties"].items()}
    preserves_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in schema and "additionalProperties" not in schema and not preserves_unknown:
        result["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string") and "anyOf" not in schema and "type" not in schema:
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") is True and isinstance(schema.get("type"), str):
        result["type"] = [schema["type"], "null"]
    return result


@functools.cache
def _kubernetes_definitions(version: str) -> Schema:
    """The strict definitions of kubernetes-validate's schemas for the closest version."""
    supported = [v for v in kubernetes_validate.utils.all_versions() if _minor(v) <= _minor(version)]
    if not supported:
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {version}")
    ref = importlib.resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{supported[-1]}-local-strict/_definitions.json"
    )
    return json.loads(ref.read_text())["$defs"]


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def _inline_refs(schema: Any, definitions: Schema, depth: int = 0) -> Any:
    if depth > 20:  # ObjectMeta's references are shallow; guards against cycles
        return {}
    if isinstance(schema, list):
        return [_inline_refs(item, definitions, depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _inline_refs(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions, depth + 1)
    return {key: _inline_refs(value, definitions, depth) for key, value in schema.items()}


class SchemaSet:
    """Validators by (apiVersion, kind) for custom resources, plus the built-in kinds."""

    def __init__(self, kubernetes_version: str):
        self.kubernetes_version = kubernetes_version
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}

    def add_crds(self, crd_files: Iterable[Path]) -> SchemaSet:
        definitions = _kubernetes_definitions(self.kubernetes_version)
        meta = _inline_refs(definitions[OBJECT_META], definitions)
        for path in crd_files:
            # CRDs are megabytes of YAML: libyaml parses them in a fraction of the time.
            crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schema["properties"]["metadata"] = meta
                schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
                validator_cls = jsonschema.validators.validator_for(
                    schema, default=jsonschema.Draft7Validator
                )
                self._validators[(f"{group}/{version['name']}", kind)] = validator_cls(schema)
        return self

    def knows(self, document: dict[str, Any]) -> bool:
        return (document.get("apiVersion"), document.get("kind")) in self._validators

    def validate(self, document: Any, source: str) -> list[Problem]:
        name = object_name(document)
        if not isinstance(document, dict) or "apiVersion" not in document or "kind" not in document:
            return [Problem(source, name, "", "not a Kubernetes object (apiVersion and kind are required)")]
        key = (document["apiVersion"], document["kind"])
        if key in self._validators:
            return [
                Problem(source, name, format_path(error.absolute_path), error.message)
                for error in sorted(
                    self._validators[key].iter_errors(document), key=lambda e: list(e.absolute_path)
                )
            ]
        return list(self._validate_builtin(document, source, name))

    def _validate_builtin(self, document: dict[str, Any], source: str, name: str) -> Iterator[Problem]:
        try:
            kubernetes_validate.validate(document, self.kubernetes_version, strict=True)
        except kubernetes_validate.utils.SchemaNotFoundError as exc:
            yield Problem(source, name, "apiVersion", f"no schema known: {exc.message}")
        except kubernetes_validate.utils.ValidationError as exc:
            yield Problem(source, name, format_path(exc.absolute_path), exc.message)


def schema_set(kubernetes_version: str, crd_dirs: Iterable[Path]) -> SchemaSet:
    """Validators for the built-in kinds plus every CRD file in ``crd_dirs`` (built once per process)."""
    return _schema_set(kubernetes_version, tuple(Path(d).resolve() for d in crd_dirs))


@functools.cache
def _schema_set(kubernetes_version: str, crd_dirs: tuple[Path, ...]) -> SchemaSet:
    files = [path for directory in crd_dirs for path in sorted(directory.glob("*.yaml"))]
    return SchemaSet(kubernetes_version).add_crds(files)
