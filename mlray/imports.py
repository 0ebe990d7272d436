"""Resolve ``package.module:attribute`` strings from configs (use-case plug-ins)."""

from __future__ import annotations

import pkgutil
from typing import Any


def import_object(path: str) -> Any:
    """``"mlray.models.mlp:build_mlp"`` -> the function object (``pkgutil.resolve_name``, which imports the
    module before the colon and walks the attributes after it). Only the colon form is accepted: with a
    colon, which part is the module is never guessed."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"import path {path!r}: expected 'package.module:attribute'")
    try:
        return pkgutil.resolve_name(path)
    except ImportError as exc:
        raise ValueError(f"import path {path!r}: cannot import {module_name!r} ({exc})") from None
    except AttributeError:
        raise ValueError(f"import path {path!r}: {module_name!r} has no attribute {attribute!r}") from None
    except ValueError:  # resolve_name's "invalid format": not dotted Python names
        raise ValueError(
            f"import path {path!r}: expected 'package.module:attribute' of Python names") from None
