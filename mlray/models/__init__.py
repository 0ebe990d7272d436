"""Model factories and the bundle format shared by training, serving and batch inference."""

from mlray.models.bundle import ModelSpec, load_bundle, save_bundle
from mlray.models.mlp import build_mlp
from mlray.models.trust import LoadPolicy, UntrustedModel

__all__ = ["LoadPolicy", "ModelSpec", "UntrustedModel", "build_mlp", "load_bundle", "save_bundle"]
