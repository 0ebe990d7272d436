"""A bundle as an MLflow model: logged, registered and loaded without pickles.

The logged model folder holds the bundle files (``spec.json``, ``model.pt``)
and an ``MLmodel`` file with the signature, ``task`` metadata and one flavor,
``mlray_bundle``. It has no ``python_function`` or ``pytorch`` flavor, so no
MLflow loader would unpickle anything from it, and mlray loads a registry URI
(``models:/name/3``, ``models:/name@alias``) only when it has this flavor,
through ``load_bundle``: weights-only, factory from the allowlist.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from torch import nn

from mlray.models.bundle import SPEC_FILE, WEIGHTS_FILE, ModelSpec, load_bundle, save_bundle
from mlray.models.trust import LoadPolicy, UntrustedModel
from mlray.storage import Storage

FLAVOR = "mlray_bundle"


def log_bundle_model(model: nn.Module, spec: ModelSpec, name: str, *, signature: Any = None,
                     registered_model_name: str | None = None) -> Any:
    """Log (and optionally register) ``model`` in the active MLflow run; MLflow's ``ModelInfo``."""
    from mlflow.models import Model

    return Model.log(artifact_path=None, name=name, flavor=sys.modules[__name__], flavor_name=FLAVOR,
                     registered_model_name=registered_model_name, metadata={"task": spec.task},
                     model=model, spec=spec, signature=signature)


def save_model(path: str, mlflow_model: Any, model: nn.Module, spec: ModelSpec,
               signature: Any = None) -> None:
    """MLflow's flavor hook, called by ``Model.log``: the bundle files and the MLmodel file in ``path``."""
    save_bundle(model, spec, Storage(path))
    mlflow_model.signature = signature
    mlflow_model.add_flavor(FLAVOR, spec=SPEC_FILE, weights=WEIGHTS_FILE)
    mlflow_model.save(os.path.join(path, "MLmodel"))


def load_bundle_model(uri: str, policy: LoadPolicy) -> tuple[nn.Module, ModelSpec]:
    """A registry model logged by ``log_bundle_model``; any other flavor is refused before download."""
    import mlflow
    from mlflow.models import get_model_info

    flavors = sorted(get_model_info(uri).flavors)
    if FLAVOR not in flavors:
        raise UntrustedModel(
            f"{uri}: flavors {flavors}, not {FLAVOR!r}: mlray loads registry models only as weights plus an "
            "allowed factory, never a pickled model"
        )
    with tempfile.TemporaryDirectory(prefix="mlray-model-") as scratch:
        return load_bundle(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch), policy)
