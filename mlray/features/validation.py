"""Checking feature views against their Parquet sources before Feast touches them.

Feast itself reports a missing file or a mistyped column late and without
saying which view or field is at fault (a pyarrow error mid-materialization,
or nulls). These checks read only the files' schemas, and name both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq
from feast import Entity, FeatureView, FileSource

from mlray.storage import Storage


class FeatureSourceError(ValueError):
    """A feature view whose source is missing or does not match its schema."""

    def __init__(self, view: str, problem: str):
        self.view = view
        super().__init__(f"feature view {view!r}: {problem}")


ArrowCheck = Callable[[pa.DataType], bool]


def _is_number(dtype: pa.DataType) -> bool:
    return pa.types.is_floating(dtype) or pa.types.is_integer(dtype)


ARROW_CHECKS: dict[str, tuple[ArrowCheck, str]] = {
    "INT32": (pa.types.is_integer, "an integer"),
    "INT64": (pa.types.is_integer, "an integer"),
    "FLOAT": (_is_number, "a number"),
    "DOUBLE": (_is_number, "a number"),
    "STRING": (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "a string"),
    "BOOL": (pa.types.is_boolean, "a boolean"),
    "BYTES": (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "bytes"),
    "UNIX_TIMESTAMP": (pa.types.is_timestamp, "a timestamp"),
}


def read_parquet_schema(path: str) -> pa.Schema | None:
    """The file's schema, or None when there is no such file (local or gs://)."""
    storage = Storage(os.path.dirname(path))
    name = os.path.basename(path)
    if not storage.exists(name):
        return None
    with storage.fs.open(storage.path(name), "rb") as handle:
        return pq.read_schema(handle)


def expected_columns(view: FeatureView, entities: dict[str, Entity]) -> Iterable[tuple[str, str]]:
    """(column, value type name) for every column the view reads from its source."""
    source = view.batch_source
    for entity_name in view.entities:
        entity = entities[entity_name]
        yield entity.join_key, entity.value_type.name
    yield source.timestamp_field, "UNIX_TIMESTAMP"
    if source.created_timestamp_column:
        yield source.created_timestamp_column, "UNIX_TIMESTAMP"
    for feature in view.features:
        yield source.field_mapping.get(feature.name, feature.name), feature.dtype.to_value_type().name


def check_view_source(view: FeatureView, entities: Iterable[Entity]) -> None:
    """Raise FeatureSourceError if a file source is missing or lacks/mistypes a column."""
    source = view.batch_source
    if not isinstance(source, FileSource):
        return  # BigQuery tables are checked by BigQuery when Feast queries them
    schema = read_parquet_schema(source.path)
    if schema is None:
        raise FeatureSourceError(view.name, f"source file {source.path} not found (sources.location in the features config)")
    for name, type_name in expected_columns(view, {entity.name: entity for entity in entities}):
        if name not in schema.names:
            raise FeatureSourceError(
                view.name, f"field {name!r} is missing from {source.path} (it has {schema.names})"
            )
        check, wanted = ARROW_CHECKS.get(type_name, (lambda _: True, "any type"))
        actual = schema.field(name).type
        if not check(actual):
            raise FeatureSourceError(
                view.name, f"field {name!r} is {actual} in {source.path}, the view declares {type_name} ({wanted})"
            )
