"""Loading a bundle never runs code that the bundle names or carries; locations stay under allowed roots."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from mlray.models import LoadPolicy, ModelSpec, UntrustedModel, build_mlp, load_bundle, save_bundle
from mlray.models.bundle import SPEC_FILE, WEIGHTS_FILE
from mlray.serve.prediction.versions import load_model_version
from mlray.storage import Storage
from tests.pickle_payloads import pickled_payload

KWARGS = {"input_dim": 4, "hidden": [8]}
SIDE_EFFECT_MODULE = "tests.models.import_side_effect"


@pytest.fixture(params=["local", "gcs"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return Storage(str(tmp_path / "bundle"))
    return Storage(request.getfixturevalue("gcs_uri"))


def good_bundle(storage: Storage) -> ModelSpec:
    spec = ModelSpec("mlray.models.mlp:build_mlp", KWARGS, list("abcd"))
    save_bundle(build_mlp(**KWARGS), spec, storage)
    return spec


def rewrite_spec(storage: Storage, **changes: object) -> None:
    spec = json.loads(storage.read_text(SPEC_FILE))
    storage.write_text(SPEC_FILE, json.dumps({**spec, **changes}))


@pytest.mark.security
@pytest.mark.parametrize("factory", ["subprocess:run", "os:system", f"{SIDE_EFFECT_MODULE}:build"])
def test_a_spec_naming_code_outside_the_allowlist_is_refused_before_import(
    storage, factory, tmp_path, monkeypatch, security_probe
):
    marker, import_marker = tmp_path / "ran", tmp_path / "imported"
    monkeypatch.setenv("MLRAY_TEST_IMPORT_MARKER", str(import_marker))
    kwargs = {"subprocess:run": {"args": ["touch", str(marker)]}, "os:system": {"command": f"touch {marker}"}}
    good_bundle(storage)
    rewrite_spec(storage, factory=factory, kwargs=kwargs.get(factory, {}))

    with pytest.raises(UntrustedModel, match="refused before import") as refused:
        load_bundle(storage.url())
    assert not marker.exists() and not import_marker.exists()
    assert SIDE_EFFECT_MODULE not in sys.modules
    where = "GCS emulator" if storage.is_remote else "local folder"
    security_probe("model loading", f"bundle in a {where} whose spec.json names {factory}",
                   "refused before the module is imported; nothing runs", f"{refused.value}; marker absent")


@pytest.mark.security
def test_an_allowed_module_cannot_lend_a_name_it_imported(tmp_path, security_probe):
    """``mlray.models.bundle`` imports ``import_object``; naming it through that module would reach
    ``os:system``."""
    storage = Storage(str(tmp_path / "bundle"))
    marker = tmp_path / "ran"
    good_bundle(storage)
    rewrite_spec(storage, factory="mlray.models.bundle:import_object", kwargs={"path": "os:system"})
    refusal = "import_object from .mlray.imports.; refused, not called"
    with pytest.raises(UntrustedModel, match=refusal) as refused:
        load_bundle(storage.url())
    assert not marker.exists()
    security_probe("model loading", "spec.json names mlray.models.bundle:import_object (a name the allowed "
                   "module imported from elsewhere)",
                   "refused: the factory must be defined in an allowed module",
                   refused.value)


@pytest.mark.security
def test_pickled_objects_in_the_weights_are_refused(storage, tmp_path, security_probe):
    marker = tmp_path / "ran"
    good_bundle(storage)
    storage.write_bytes(WEIGHTS_FILE, pickled_payload(marker))
    with pytest.raises(UntrustedModel, match="weights-only loader .*GLOBAL") as refused:
        load_bundle(storage.url())
    assert not marker.exists()
    security_probe("model loading", f"model.pt ({'GCS' if storage.is_remote else 'local'}) holding an object "
                   "whose __reduce__ runs `touch marker`", "refused by the weights-only loader; nothing runs",
                   f"{refused.value}; marker absent")


def test_a_user_factory_loads_once_the_allowlist_names_it(tmp_path):
    storage = Storage(str(tmp_path / "bundle"))
    spec = good_bundle(storage)
    rewrite_spec(storage, factory="mlray.models:build_mlp")  # re-exported: defined in mlray.models.mlp
    policy = LoadPolicy(factories=("mlray.models.mlp:build_mlp", "mlray.models"))
    model, loaded = load_bundle(storage.url(), policy)
    assert loaded.feature_names == spec.feature_names and model(torch.zeros(2, 4)).shape == (2, 2)
    with pytest.raises(UntrustedModel, match="not on the allowed factories"):
        load_bundle(storage.url(), LoadPolicy(factories=("mlray.models.mlp:other",)))
    rewrite_spec(storage, factory="mlray.models.mlp:missing")
    with pytest.raises(UntrustedModel, match="'mlray.models.mlp:missing': cannot be resolved"):
        load_bundle(storage.url(), LoadPolicy(factories=("mlray.models.*",)))


def test_locations_must_lie_under_a_root(tmp_path):
    root, outside = tmp_path / "models", tmp_path / "elsewhere"
    root.mkdir(), outside.mkdir()
    (root / "escape").symlink_to(outside)
    policy = LoadPolicy(factories=(), roots=(str(root), "gs://bucket/models", "models:/"))
    for allowed in (str(root / "v1"), str(root), f"file://{root}/v2", "gs://bucket/models/v1",
                    "models:/driver-trips/3", "models:/driver-trips@champion"):
        policy.check_location(allowed)
    for refused in (str(outside), f"{root}/../elsewhere", str(root / "escape" / "v1"), f"{root}-evil/v1",
                    "gs://bucket/models/../other", "gs://bucket/models-evil/v1", "gs://other/models/v1",
                    "http://example.com/models/v1", "runs:/abc/model"):
        with pytest.raises(UntrustedModel, match=r"outside the allowed model roots"):
            policy.check_location(refused)
    only_one_model = LoadPolicy(factories=(), roots=("models:/driver-trips",))
    only_one_model.check_location("models:/driver-trips@champion")
    with pytest.raises(UntrustedModel):
        only_one_model.check_location("models:/driver-trips-evil/1")


@pytest.mark.security
def test_a_version_outside_the_roots_is_refused_at_load_time(tmp_path, security_probe):
    """Even a well-formed bundle: where it lies is checked before anything of it is read."""
    outside = Storage(str(tmp_path / "elsewhere" / "v1"))
    good_bundle(outside)
    policy = LoadPolicy(factories=("mlray.models.*",), roots=(str(tmp_path / "storage"), "models:/"))
    with pytest.raises(UntrustedModel, match="outside the allowed model roots") as refused:
        load_model_version("v1", outside.url(), policy=policy)
    assert load_model_version("v1", outside.url()).feature_names == list("abcd")  # the default: any location
    security_probe("model loading", "load a version located outside storage.uri and models:/",
                   "refused before reading it", refused.value)
