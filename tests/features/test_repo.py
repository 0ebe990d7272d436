"""The shipped Feast repository: local and GCP configurations, apply-if-changed, the feast CLI."""

from __future__ import annotations

import ast
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from feast import BigQuerySource, FileSource
from feast.cli.cli import cli
from feast.infra.offline_stores.bigquery import BigQueryOfflineStoreConfig
from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
from feast.infra.online_stores.datastore import DatastoreOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

from mlray.config.features import FeaturesConfig
from mlray.config.loader import load_config
from mlray.features.store import definitions, open_store, prepare_store, render_store_yaml, repo_config
from mlray.usecases import driver_trips
from tests.features.conftest import NUM_DRIVERS, PROJECT_ROOT, REPO_PATH, write_features_config

GCP_ENV = {
    "GOOGLE_CLOUD_PROJECT": "acme-ml",
    "MLRAY_FEAST_DATASET": "features",
    "MLRAY_FEAST_BUCKET": "acme-feast",
    "MLRAY_FEAST_LOCATION": "EU",
}


def shipped(name: str) -> FeaturesConfig:
    return load_config(FeaturesConfig, PROJECT_ROOT / "configs" / name, environ={})


def test_local_configuration_is_the_default(monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    config = shipped("features.yaml")
    assert config == FeaturesConfig()  # the file restates the model's defaults
    repo = repo_config(config)
    assert repo.provider == "local" and repo.entity_key_serialization_version == 3
    assert isinstance(repo.offline_store, DaskOfflineStoreConfig)  # Feast's "file" offline store
    assert isinstance(repo.online_store, SqliteOnlineStoreConfig)
    # Data and state under storage.uri (runs/storage made absolute against the working directory).
    root = PROJECT_ROOT / "runs" / "storage"
    assert (repo.repo_path / repo.registry.path).resolve() == root / "feature_store" / "registry.db"
    source = definitions(config).driver_stats_source
    assert isinstance(source, FileSource) and source.path == str(root / "data" / "processed" / "driver_stats.parquet")


def test_gcp_configuration_validates_with_feasts_config_classes(monkeypatch):
    for name, value in GCP_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(PROJECT_ROOT)
    config = shipped("features.gcp.yaml").model_copy(deep=True)
    config.repo.state_dir = "/tmp/not-used-for-remote-stores"
    repo = repo_config(config)
    assert repo.provider == "gcp"
    assert isinstance(repo.offline_store, BigQueryOfflineStoreConfig)
    assert (repo.offline_store.project_id, repo.offline_store.dataset, repo.offline_store.location) == ("acme-ml", "features", "EU")
    assert repo.offline_store.gcs_staging_location == "gs://acme-feast/feast/staging"
    assert isinstance(repo.online_store, DatastoreOnlineStoreConfig) and repo.online_store.project_id == "acme-ml"
    assert repo.registry.path == "gs://acme-feast/feast/registry.pb"
    source = definitions(config).driver_stats_source
    assert isinstance(source, BigQuerySource) and source.table == "acme-ml.features.driver_stats"


def test_gcp_configuration_names_no_key_file():
    for path in [REPO_PATH / "feature_store.gcp.yaml", PROJECT_ROOT / "configs" / "features.gcp.yaml"]:
        values = yaml.safe_dump(yaml.safe_load(path.read_text()))  # values only, comments dropped
        for word in ["credential", "key_file", "keyfile", ".json", "private_key"]:
            assert word not in values.lower(), f"{path} mentions {word!r}"


def test_gcp_configuration_without_its_environment_is_refused_naming_the_variables(monkeypatch):
    for name in GCP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(PROJECT_ROOT)
    with pytest.raises(ValueError, match=r"environment variables \['GOOGLE_CLOUD_PROJECT', 'MLRAY_FEAST_BUCKET'"):
        repo_config(shipped("features.gcp.yaml"))


def test_apply_runs_only_when_the_definitions_change(fresh_setup, tmp_path):
    assert "driver_hourly_stats" in prepare_store(fresh_setup.config).applied
    assert prepare_store(fresh_setup.config).applied == []
    moved = tmp_path / "moved"
    moved.mkdir()
    (fresh_setup.data_dir / "driver_stats.parquet").rename(moved / "driver_stats.parquet")
    config = fresh_setup.config.model_copy(deep=True)
    config.sources.location = str(moved)
    assert prepare_store(config).applied == ["driver_stats_source", "driver_hourly_stats", "trip_features", "driver_trips_v1"]


def feast_cli(*args: str) -> str:
    """The ``feast`` command itself (its click entry point), in this process: no second 7 s import."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, f"feast {args}: {result.output}"
    return result.output


def test_feast_cli_applies_materializes_and_lists_the_shipped_repo(tmp_path, monkeypatch):
    # Recent data: the CLI's first materialize-incremental starts at now - ttl.
    start = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=6)
    data = driver_trips.generate(num_drivers=NUM_DRIVERS, hours=6, num_trips=10, seed=3, start=start)
    data_dir, state_dir = tmp_path / "data", tmp_path / "state"
    data_dir.mkdir()
    data.driver_stats.to_parquet(data_dir / "driver_stats.parquet")
    config_path = write_features_config(tmp_path / "features.yaml", data_dir, state_dir)
    config = load_config(FeaturesConfig, config_path, environ={})
    state_dir.mkdir()
    store_yaml = render_store_yaml(config, tmp_path / "feature_store.yaml")
    monkeypatch.setenv("MLRAY_FEATURES_CONFIG", str(config_path))  # read by the repo's feature_definitions.py
    monkeypatch.chdir(PROJECT_ROOT)
    repo = ["-c", str(REPO_PATH), "-f", str(store_yaml)]

    feast_cli(*repo, "apply")
    end = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%S")
    feast_cli(*repo, "materialize-incremental", end)
    listed = feast_cli(*repo, "feature-views", "list")
    assert "driver_hourly_stats" in listed and "trip_features" in listed

    online = open_store(config).get_online_features(
        features=["driver_hourly_stats:conv_rate"], entity_rows=[{"driver_id": 1001}]
    ).to_dict()
    latest = data.driver_stats[data.driver_stats.driver_id == 1001].sort_values("event_timestamp").iloc[-1]
    assert online["conv_rate"][0] == pytest.approx(float(latest.conv_rate))


def test_airflow_dag_calls_the_same_materialize_function():
    # Airflow is not installed here (importing the DAG is not required without it): check the file's code.
    source = (PROJECT_ROOT / "mlray" / "features" / "airflow_dag.py").read_text()
    tree = ast.parse(source)
    imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert ("mlray.features.materialize", "materialize") in imported
    assert "python_callable=materialize_interval" in source


def test_relative_store_paths_resolve_against_the_repository_not_the_working_directory(fresh_setup, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(
        (REPO_PATH / "feature_store.yaml").read_text().replace("../../runs/storage/feature_store", "state")
    )
    config = fresh_setup.config.model_copy(deep=True)
    config.repo.path, config.repo.state_dir = str(repo), None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    prepare_store(config)
    assert (repo / "state" / "registry.db").is_file()
    assert not any(elsewhere.iterdir())
