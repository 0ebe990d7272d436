"""A model bundle: what training exports and serving and batch inference load.

Layout under one folder (local or ``gs://``), both files written atomically::

    <bundle>/spec.json   ModelSpec: factory import path, its kwargs, feature names, task
    <bundle>/model.pt    torch state_dict

The factory rebuilds the architecture, so a user's own model plugs in by
import path without mlray knowing its class, once the loader's allowlist
(``models.trust.allowed_factories``) names it: a spec is data, and data never
chooses what gets imported. The weights load without unpickling any object.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch
from torch import nn

from mlray.imports import import_object
from mlray.models.trust import LoadPolicy, UntrustedModel, weights_only_load
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
        """From a spec the job's own config made (training): its factory is imported as named."""
        return import_object(self.factory)(**self.kwargs)

    def build_trusted(self, policy: LoadPolicy) -> nn.Module:
        """From a spec read from storage: the factory must pass ``policy`` before it is imported."""
        model = policy.resolve_factory(self.factory)(**self.kwargs)
        if not isinstance(model, nn.Module):
            returned = type(model).__name__
            raise UntrustedModel(f"factory {self.factory!r} returned {returned}, not a torch module")
        return model

    @classmethod
    def from_json(cls, text: str, where: str) -> ModelSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON ({exc})") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not {"factory", "kwargs", "feature_names"} <= set(data) <= known:
            raise ValueError(f"{where}: expected an object with factory, kwargs, feature_names"
                             "[, task, metadata]")
        if not isinstance(data["factory"], str) or not isinstance(data["kwargs"], dict):
            raise ValueError(f"{where}: factory must be a string and kwargs an object")
        return cls(**data)


def save_bundle(model: nn.Module, spec: ModelSpec, storage: Storage, relpath: str = "") -> str:
    """Write weights first, then the spec: a bundle with a spec is complete."""
    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()}
    torch.save(state, buffer)
    prefix = f"{relpath.rstrip('/')}/" if relpath else ""
    storage.write_bytes(f"{prefix}{WEIGHTS_FILE}", buffer.getvalue())
    storage.write_text(f"{prefix}{SPEC_FILE}", json.dumps(asdict(spec), indent=2, sort_keys=True))
    return storage.url(relpath) if relpath else storage.url()


def load_bundle(uri: str, policy: LoadPolicy | None = None) -> tuple[nn.Module, ModelSpec]:
    """The model in eval mode on CPU, and its spec.

    The spec's factory must pass ``policy`` (default: ``models.trust`` defaults)
    before it is imported, and the weights load without unpickling any object.
    """
    storage = Storage(uri)
    spec = ModelSpec.from_json(storage.read_text(SPEC_FILE), storage.url(SPEC_FILE))
    model = spec.build_trusted(policy or default_policy())
    model.load_state_dict(load_weights(storage.read_bytes(WEIGHTS_FILE), storage.url(WEIGHTS_FILE)))
    model.eval()
    return model, spec


def load_weights(payload: bytes, where: str) -> dict[str, torch.Tensor]:
    """A state dict of tensors; anything that would need an object unpickled is refused."""
    state = weights_only_load(payload, where)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UntrustedModel(f"{where}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def default_policy() -> LoadPolicy:
    """Allowed factories as ``models.trust`` has them by default; any location."""
    from mlray.config.sections import ModelTrustConfig

    return LoadPolicy(factories=tuple(ModelTrustConfig().allowed_factories))


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel, if wrapped."""
    return getattr(model, "module", model)
