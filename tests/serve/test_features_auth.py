"""Instance parsing, the enricher contract, API keys: plain Python, no Ray."""

from __future__ import annotations

import pytest
import torch

from mlray.config.inference import AuthSection, FeaturesSection
from mlray.serve.auth import ApiKeys, AuthConfigError
from mlray.serve.features import (
    FeatureEnricher,
    InMemoryEnricher,
    InstanceError,
    InstanceParser,
    UnknownEntityError,
    build_enricher,
)

NAMES = ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
TABLE = {1001: {"conv_rate": 0.7, "acc_rate": 0.9, "avg_daily_trips": 14.0}}


def test_vectors_and_named_instances_become_rows_in_feature_order():
    parser = InstanceParser(NAMES)
    rows, metadata = parser.rows([[1, 2, 3, 4], {"trip_distance_km": 4, "avg_daily_trips": 3, "acc_rate": 2,
                                                  "conv_rate": 1, "driver_id": 7}])
    assert torch.equal(rows, torch.tensor([[1.0, 2, 3, 4], [1, 2, 3, 4]]))
    assert metadata == {}


def test_every_bad_instance_is_named():
    with pytest.raises(InstanceError) as caught:
        InstanceParser(NAMES).rows([[1, 2, 3], [1, 2, 3, 4], {"conv_rate": 1}, {**dict.fromkeys(NAMES, 1), "acc_rate": "x"}])
    locations = [p["loc"] for p in caught.value.problems]
    assert locations == [["body", "instances", 0], ["body", "instances", 2], ["body", "instances", 3, "acc_rate"]]
    assert "missing features ['acc_rate'" in caught.value.problems[1]["msg"]


def test_entity_instances_go_through_the_enricher_with_its_metadata():
    enricher = build_enricher(FeaturesSection(
        enricher="mlray.serve.features:InMemoryEnricher",
        kwargs={"entity_key": "driver_id", "feature_names": NAMES, "table": TABLE},
    ))
    assert isinstance(enricher, FeatureEnricher)
    rows, metadata = InstanceParser(NAMES, enricher).rows([[1, 2, 3, 4], {"driver_id": 1001, "trip_distance_km": 2.5}])
    assert rows[1].tolist() == pytest.approx([0.7, 0.9, 14.0, 2.5])
    assert metadata == {"source": "in_memory", "entities": 1}
    with pytest.raises(UnknownEntityError):
        InstanceParser(NAMES, enricher).rows([{"driver_id": 5, "trip_distance_km": 2.5}])


def test_a_factory_without_enrich_is_refused():
    with pytest.raises(TypeError, match="has no enrich"):
        build_enricher(FeaturesSection(enricher="collections:OrderedDict"))


def test_keys_from_env_and_file_and_bearer_checks(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# comment\nfile-key\n\n")
    keys = ApiKeys.load(AuthSection(api_keys_env="K", api_keys_file=str(key_file)), environ={"K": "key-alpha, key-beta"})
    assert keys.accepts("Bearer key-alpha") and keys.accepts("bearer key-beta") and keys.accepts("Bearer file-key")
    assert not keys.accepts(None) and not keys.accepts("Bearer c") and not keys.accepts("key-alpha") and not keys.accepts("Basic key-alpha")
    assert "key-alpha" not in repr(keys) and "file-key" not in repr(keys) and len(keys.digests) == 3


def test_without_keys_only_a_loopback_service_may_run_open():
    keys = ApiKeys.load(AuthSection(api_keys_env="K", api_keys_file=None), environ={})
    assert keys.open and keys.accepts(None)
    keys.require_keys_unless_loopback("127.0.0.1")
    for host in ("0.0.0.0", None):
        with pytest.raises(AuthConfigError, match="refusing"):
            keys.require_keys_unless_loopback(host)
