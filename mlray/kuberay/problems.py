"""What validation reports: one ``Problem`` per violation, named by object and path.

Apart from the schema validators (the ``validate`` extra), so that rendering needs neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One violation: which object, where in it, and what is wrong."""

    source: str  # file (or other origin) of the object
    object: str  # Kind/name
    path: str  # dotted path inside the object, e.g. spec.workerGroupSpecs[0].template
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.object}: {self.path or '<root>'}: {self.message}"


def format_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def object_name(document: Any) -> str:
    if not isinstance(document, dict):
        return "<not an object>"
    name = (document.get("metadata") or {}).get("name", "<unnamed>")
    return f"{document.get('kind', '<no kind>')}/{name}"
