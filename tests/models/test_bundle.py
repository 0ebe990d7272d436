import pytest
import torch

from mlray.models import ModelSpec, build_mlp, load_bundle, save_bundle
from mlray.storage import Storage


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_bundle_round_trip_predicts_the_same(where, tmp_path, request):
    uri = str(tmp_path / "bundle") if where == "local" else request.getfixturevalue("gcs_uri")
    kwargs = {"input_dim": 4, "hidden": [8], "feature_mean": [0.0] * 4, "feature_std": [2.0] * 4}
    model = build_mlp(**kwargs)
    spec = ModelSpec(factory="mlray.models.mlp:build_mlp", kwargs=kwargs, feature_names=list("abcd"))
    assert save_bundle(model, spec, Storage(uri)) == Storage(uri).url()
    loaded, loaded_spec = load_bundle(uri)
    x = torch.randn(5, 4)
    assert torch.equal(model.eval()(x), loaded(x))
    assert loaded_spec == spec
