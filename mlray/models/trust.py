"""What loading a model may read and import: data (a ``spec.json``, a rollout request) never names code.

A bundle's ``spec.json`` names the factory that rebuilds its network. Only a
factory on the allowlist is imported, and the allowlist is checked on the
string before anything is imported; the object it resolves to must itself be
defined in an allowed module (``mlray.models.bundle:import_object`` would
otherwise reach ``os:system``). A version location must lie under an allowed root: checked
when a rollout names it and again when a replica loads it.
"""

from __future__ import annotations

import io
import pickle
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mlray.storage import Storage
from mlray.storage.locations import MLFLOW_SCHEME

_FACTORY_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z]\w*$")


class UntrustedModel(ValueError):
    """A model location or factory that the load policy does not allow; nothing was imported or loaded."""


@dataclass(frozen=True)
class LoadPolicy:
    """``roots``: where versions may be loaded from, None for anywhere (a job's own config names the
    location); ``factories``: ``package.*``, ``package.module`` or ``package.module:function``."""

    factories: tuple[str, ...]
    roots: tuple[str, ...] | None = None

    def check_location(self, location: str, field: str = "location") -> None:
        if self.roots is not None and not any(_under_root(location, root) for root in self.roots):
            raise UntrustedModel(
                f"{field}: {location!r} is outside the allowed model roots {list(self.roots)} "
                "(models.trust.allowed_roots)"
            )

    def check_locations(self, locations: Mapping[str, str], field: str = "versions") -> None:
        for name, location in locations.items():
            self.check_location(location, f"{field}.{name}")

    def resolve_factory(self, path: str) -> Callable[..., Any]:
        """The factory named by ``path``, imported only once the string passed the allowlist."""
        if not _FACTORY_PATH.match(path):
            raise UntrustedModel(f"factory {path!r}: expected 'package.module:function'")
        if not self._allows(path):
            raise UntrustedModel(f"{self._refusal(path)}: refused before import")
        try:
            factory = pkgutil.resolve_name(path)
        except (ImportError, AttributeError) as exc:
            raise UntrustedModel(f"factory {path!r}: cannot be resolved ({exc})") from None
        # A name the module merely imported (torch, subprocess, ...) is not the module's own factory.
        defined_in = getattr(factory, "__module__", None) or ""
        if not callable(factory) or not self._allows(f"{defined_in}:{path.partition(':')[2]}"):
            name = getattr(factory, "__qualname__", type(factory).__name__)
            raise UntrustedModel(
                f"{self._refusal(path)}: it is {name} from {defined_in!r}; refused, not called"
            )
        return factory

    def _allows(self, path: str) -> bool:
        module = path.partition(":")[0]
        for entry in self.factories:
            if entry.endswith(".*"):
                package = entry[:-2]
                if module == package or module.startswith(package + "."):
                    return True
            elif entry == path or entry == module:
                return True
        return False

    def _refusal(self, path: str) -> str:
        allowed = list(self.factories)
        return f"factory {path!r} is not on the allowed factories {allowed} (models.trust.allowed_factories)"


def _under_root(location: str, root: str) -> bool:
    if location.startswith(MLFLOW_SCHEME) or root.startswith(MLFLOW_SCHEME):
        if not (location.startswith(MLFLOW_SCHEME) and root.startswith(MLFLOW_SCHEME)):
            return False
        base = root.rstrip("/")
        return root == MLFLOW_SCHEME or location == base or location.startswith((base + "/", base + "@"))
    try:
        return Storage(root).contains(location)
    except ValueError:  # not a local path or gs:// URI at all
        return False


def weights_only_load(payload: bytes, where: str) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers; any other object is refused."""
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line for line in lines if "GLOBAL" in line), lines[0] if lines else type(exc).__name__)
        raise UntrustedModel(f"{where}: refused by the weights-only loader ({reason})") from None
