"""The configuration reference, generated from the pydantic models.

``python -m mlray.config.reference`` prints it; ``--write README.md`` replaces
the block between the reference markers in the README, and a test fails when
the README's block differs from a fresh render, so docs and models can't drift.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mlray.config.registry import CONFIG_FILES

BEGIN_MARKER = "<!-- config-reference:begin (generated: python -m mlray.config.reference --write README.md) -->"
END_MARKER = "<!-- config-reference:end -->"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class behind ``Model`` or ``Model | None``, if any."""
    candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _type_name(annotation: Any) -> str:
    """Readable type: ``float > 0 or null``, ``one of 'a', 'b'``, ``list[str]``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        bounds = _bounds(args[1:])
        return f"{_type_name(args[0])} {bounds}".strip()
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _bounds(metadata: typing.Iterable[Any]) -> str:
    parts = []
    for item in metadata:
        if isinstance(item, FieldInfo):  # Annotated[float, Field(gt=0)] nests its bounds
            parts.append(_bounds(item.metadata))
            continue
        for name, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            bound = getattr(item, name, None)
            if bound is not None:
                parts.append(f"{symbol} {bound}")
    return ", ".join(p for p in parts if p)


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return ""
    return json.dumps(value, default=str)


def rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(dotted key, type, default, notes) for every leaf field, depth first."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _nested_model(field.annotation)
        if nested is not None:
            yield from rows(nested, f"{key}.")
            continue
        type_name = f"{_type_name(field.annotation)} {_bounds(field.metadata)}".strip()
        yield key, type_name, _default(field), field.description or ""


def render() -> str:
    blocks = []
    for file_name, model in CONFIG_FILES.items():
        lines = [
            f"#### `configs/{file_name}` ({model.__name__}, `{model.__module__}`)",
            "",
            "| key | type | default | notes |",
            "|---|---|---|---|",
        ]
        for key, type_name, default, notes in rows(model):
            cells = [f"`{key}`", type_name, f"`{default}`" if default else "", notes]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def replace_block(document: str, block: str) -> str:
    start = document.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    end = document.index(END_MARKER)
    return f"{document[:start]}\n{block}{document[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlray.config.reference")
    parser.add_argument("--write", type=Path, help="update the marked block in this Markdown file")
    args = parser.parse_args(argv)
    if args.write is None:
        print(render(), end="")
        return 0
    args.write.write_text(replace_block(args.write.read_text(), render()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
