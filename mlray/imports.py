"""Resolve ``package.module:attribute`` strings from configs (use-case plug-ins)."""

from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str) -> Any:
    """``"mlray.models.mlp:build_mlp"`` -> the function object."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"import path {path!r}: expected 'package.module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"import path {path!r}: cannot import {module_name!r} ({exc})") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"import path {path!r}: {module_name!r} has no attribute {attribute!r}") from None
    return target
