"""A model bundle: what training exports and serving and batch inference load.

Layout under one folder (local or ``gs://``), both files written atomically::

    <bundle>/spec.json   ModelSpec: factory import path, its kwargs, feature names, task
    <bundle>/model.pt    torch state_dict

The factory rebuilds the architecture, so a user's own model plugs in by
import path without mlray knowing its class.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from mlray.imports import import_object
from mlray.storage import Storage

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.pt"


@dataclass
class ModelSpec:
    factory: str
    kwargs: dict[str, Any]
    feature_names: list[str]
    task: Literal["classification", "regression"] = "classification"
    metadata: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        return import_object(self.factory)(**self.kwargs)


def save_bundle(model: nn.Module, spec: ModelSpec, storage: Storage, relpath: str = "") -> str:
    """Write weights first, then the spec: a bundle with a spec is complete."""
    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()}
    torch.save(state, buffer)
    prefix = f"{relpath.rstrip('/')}/" if relpath else ""
    storage.write_bytes(f"{prefix}{WEIGHTS_FILE}", buffer.getvalue())
    storage.write_text(f"{prefix}{SPEC_FILE}", json.dumps(asdict(spec), indent=2, sort_keys=True))
    return storage.url(relpath) if relpath else storage.url()


def load_bundle(uri: str) -> tuple[nn.Module, ModelSpec]:
    """The model in eval mode on CPU, and its spec."""
    storage = Storage(uri)
    spec = ModelSpec(**json.loads(storage.read_text(SPEC_FILE)))
    model = spec.build()
    state = torch.load(io.BytesIO(storage.read_bytes(WEIGHTS_FILE)), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, spec


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel, if wrapped."""
    return getattr(model, "module", model)
