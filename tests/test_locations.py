"""Jobs run anywhere: every input and output is a location under ``storage.uri`` or given explicitly.

The unit tests pin the rule (mlray/storage/locations.py) and each config's use of it; the slow ones run
``python -m jobs.X`` from an empty working directory and find every output under ``storage.uri``
(``gs://`` on the emulator for preprocess -> train -> batch-predict and optimize, a local root for
preprocess -> materialize), and nothing in the working directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlray.config import BatchPredictJobConfig, OptimizeJobConfig, PreprocessJobConfig, TrainJobConfig
from mlray.config.features import FeaturesConfig
from mlray.config.loader import ConfigError, load_config
from mlray.config.sections import StorageConfig
from mlray.storage import Storage
from mlray.storage.locations import resolve_location
from tests.job_submit import job_summary

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = PROJECT_ROOT / "configs"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("data/processed", "/srv/root/data/processed"),
        ("/elsewhere/x.parquet", "/elsewhere/x.parquet"),
        ("gs://other-bucket/a", "gs://other-bucket/a"),
        ("models:/driver-trips@champion", "models:/driver-trips@champion"),
    ],
)
def test_relative_locations_lie_under_a_local_storage_root(location, expected):
    assert resolve_location(location, "/srv/root") == expected


def test_relative_locations_lie_under_a_gcs_storage_root():
    assert resolve_location("mlray-train/model", "gs://mlray-test/pipeline") == "gs://mlray-test/pipeline/mlray-train/model"
    assert resolve_location("/abs/model", "gs://mlray-test/pipeline") == "/abs/model"


def test_a_relative_storage_root_is_made_absolute_once_at_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(PreprocessJobConfig, CONFIGS / "preprocess.yaml")
    assert config.storage.uri == str(tmp_path / "runs/storage")
    monkeypatch.chdir("/")  # a later change of directory moves nothing
    assert config.storage.location(config.output) == str(tmp_path / "runs/storage/data/processed")


def test_each_jobs_default_locations_chain_through_one_storage_root(tmp_path):
    """preprocess writes what train and materialize read; batch-predict reads what train writes."""
    root = ["storage.uri=gs://mlray-test/p"]
    preprocess = load_config(PreprocessJobConfig, CONFIGS / "preprocess.yaml", root)
    training = load_config(TrainJobConfig, CONFIGS / "train.yaml", root)
    batch = load_config(BatchPredictJobConfig, CONFIGS / "batch_predict.yaml", root)
    features = load_config(FeaturesConfig, CONFIGS / "features.yaml", root)
    written = preprocess.storage.location(preprocess.output)
    assert written == "gs://mlray-test/p/data/processed"
    assert training.data.loader_kwargs(training.storage)["path"] == f"{written}/training.parquet"
    assert batch.storage.location(batch.batch.input_uri) == f"{written}/training.parquet"
    assert features.storage.location(features.sources.location) == written
    assert batch.storage.location(batch.batch.model_uri) == f"gs://mlray-test/p/{training.run_name}/model"


def test_tune_trials_read_and_write_under_the_tune_jobs_storage(tmp_path):
    from mlray.config.tune import TuneJobConfig

    tune = TuneJobConfig(train_config=str(CONFIGS / "train.yaml"), storage={"uri": str(tmp_path)})
    base = tune.base_training_config()
    assert base.storage.uri == str(tmp_path)
    assert base.data.loader_kwargs(base.storage)["path"] == str(tmp_path / "data/processed/training.parquet")


@pytest.mark.parametrize(
    ("model", "config_file", "field"),
    [
        (PreprocessJobConfig, "preprocess.yaml", "output"),
        (BatchPredictJobConfig, "batch_predict.yaml", "batch.input_uri"),
        (BatchPredictJobConfig, "batch_predict.yaml", "batch.output_uri"),
        (BatchPredictJobConfig, "batch_predict.yaml", "batch.model_uri"),
        (OptimizeJobConfig, "optimize.yaml", "problem.path"),
        (OptimizeJobConfig, "optimize.yaml", "output.dir"),
        (FeaturesConfig, "features.yaml", "repo.state_dir"),
        (TrainJobConfig, "train.yaml", "data.kwargs.path"),
    ],
)
@pytest.mark.parametrize("bad", ["s3://bucket/x", "gs:/bucket/x", ""])
def test_an_invalid_location_is_refused_at_load_naming_the_field(model, config_file, field, bad):
    with pytest.raises(ConfigError) as info:
        load_config(model, CONFIGS / config_file, [f"{field}={bad}"])
    message = str(info.value)
    section = field.rpartition(".")[0] if field == "data.kwargs.path" else field
    assert f"{section}:" in message, message
    assert "relative ones lie under storage.uri" in message, message


def test_the_feast_repository_is_found_beside_its_config_file_not_in_the_working_directory(
    tmp_path, monkeypatch
):
    from mlray.features.store import raw_store_config

    monkeypatch.chdir(tmp_path)
    config = load_config(FeaturesConfig, CONFIGS / "features.yaml", [f"storage.uri={tmp_path / 'root'}"])
    assert config.repo.path == str(CONFIGS / "feature_store")
    raw = raw_store_config(config)
    assert raw["registry"] == str(tmp_path / "root/feature_store/registry.db")
    assert raw["online_store"]["path"] == str(tmp_path / "root/feature_store/online_store.db")


def test_a_sqlite_online_store_under_a_gcs_root_is_refused_naming_the_field():
    from mlray.features.store import raw_store_config

    config = load_config(FeaturesConfig, CONFIGS / "features.yaml", ["storage.uri=gs://mlray-test/p"])
    with pytest.raises(ValueError, match=r"repo\.state_dir: the SQLite online store needs a local folder"):
        raw_store_config(config)


def test_a_problem_is_a_shipped_instance_or_a_file_under_storage(tmp_path):
    from mlray.optimize import instances
    from mlray.optimize.loading import load_problem
    from mlray.optimize.problems import ProblemError

    storage = StorageConfig(uri=str(tmp_path))
    assert load_problem("jsp/ft06", "auto", storage).name == "ft06"
    (tmp_path / "problems").mkdir()
    shutil.copy(instances.path("jsp/la01"), tmp_path / "problems/mine")
    assert len(load_problem("problems/mine", "jobshop", storage).jobs) == 10
    with pytest.raises(ProblemError, match="problem.path: file not found"):
        load_problem("problems/absent", "auto", storage)


def test_a_gcs_problem_file_is_read_with_the_best_known_value_beside_it(gcs_uri):
    from mlray.optimize import instances
    from mlray.optimize.loading import load_problem
    from mlray.optimize.problems import ProblemError

    shipped = instances.path("jsp/ft06")
    bucket = Storage(gcs_uri)
    bucket.upload_file(str(shipped), "problems/ft06")
    bucket.upload_file(str(shipped.parent / "scheduleopt_bks.json"), "problems/scheduleopt_bks.json")
    problem = load_problem(f"{gcs_uri}/problems/ft06", "auto", StorageConfig(uri="/unused"))
    assert (problem.name, len(problem.jobs), problem.best_known) == ("ft06", 6, 55)
    relative = load_problem("problems/ft06", "auto", StorageConfig(uri=gcs_uri))
    assert relative.jobs == problem.jobs
    with pytest.raises(ProblemError, match=f"problem.path: file not found: {gcs_uri}/problems/ft10"):
        load_problem("problems/ft10", "auto", StorageConfig(uri=gcs_uri))


# -- the jobs themselves, from an empty working directory ------------------------------------------


def run_job_elsewhere(cwd: Path, env: dict[str, str], job: str, config: str, *overrides: str,
                      timeout: float = 600) -> dict:
    """``python -m jobs.<job> --config <project>/configs/<config>`` with ``cwd`` as working directory."""
    command = [sys.executable, "-m", f"jobs.{job}", "--config", str(CONFIGS / config)]
    for override in overrides:
        command += ["--set", override]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return job_summary(result.stdout, job)


def elsewhere_env(storage_uri: str, ray_address: str, tracking_uri: str | None = None) -> dict[str, str]:
    from mlray.cluster.local import client_env

    env = client_env()
    env.update(PYTHONPATH=str(PROJECT_ROOT), RAY_ADDRESS=ray_address, MLRAY_STORAGE__URI=storage_uri)
    if tracking_uri is not None:
        env["MLRAY_MLFLOW__TRACKING_URI"] = tracking_uri
    return env


@pytest.mark.slow
def test_preprocess_train_batch_predict_and_optimize_from_an_empty_directory_write_only_to_gcs(
    ray_cluster, mlflow_server, gcs_uri, tmp_path
):
    from mlray.optimize import instances

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = elsewhere_env(gcs_uri, ray_cluster.gcs_address, mlflow_server.url)
    bucket = Storage(gcs_uri)

    smaller = "driver_trips.num_trips=2000"
    preprocessed = run_job_elsewhere(cwd, env, "preprocess", "preprocess.yaml", smaller)
    assert preprocessed["artifacts"]["training"] == f"{gcs_uri}/data/processed/training.parquet"
    assert bucket.list("data/processed") == ["driver_stats.parquet", "training.parquet", "trips.parquet"]

    trained = run_job_elsewhere(cwd, env, "train", "train.yaml", "training.num_epochs=2")
    assert trained["status"] == "completed", trained
    assert trained["model_uri"] == f"{gcs_uri}/mlray-train/model"
    assert trained["checkpoint_uri"].startswith(f"{gcs_uri}/mlray-train/")
    assert bucket.list("mlray-train/model")

    predicted = run_job_elsewhere(cwd, env, "batch_predict", "batch_predict.yaml")
    assert predicted["model_uri"] == f"{gcs_uri}/mlray-train/model"
    assert predicted["output_uri"] == f"{gcs_uri}/predictions"
    assert predicted["rows"] == preprocessed["rows"]["training"]
    assert any(name.endswith(".parquet") for name in bucket.list("predictions"))

    bucket.upload_file(str(instances.path("jsp/ft06")), "problems/ft06")
    solved = run_job_elsewhere(cwd, env, "optimize", "optimize.yaml", "problem.path=problems/ft06",
                               "solver.time_limit=10", "run_name=ft06-elsewhere")  # fmt: skip
    assert solved["objective"] == 55 and solved["feasible"] is True
    assert "incumbent.json" in bucket.list("ft06-elsewhere/optimize")  # the checkpoint
    assert solved["plots"]["gantt"] == f"{gcs_uri}/optimize/ft06-elsewhere/gantt.png"
    assert "solution.json" in bucket.list("optimize/ft06-elsewhere")

    assert sorted(os.listdir(cwd)) == []  # nothing relative to the working directory


@pytest.mark.slow
def test_preprocess_and_materialize_from_an_empty_directory_keep_data_and_feature_store_under_storage(
    ray_cluster, tmp_path
):
    root, cwd = tmp_path / "storage", tmp_path / "elsewhere"
    cwd.mkdir()
    project_files = sorted(p.name for p in (CONFIGS / "feature_store").iterdir())
    env = elsewhere_env(str(root), ray_cluster.gcs_address)

    run_job_elsewhere(cwd, env, "preprocess", "preprocess.yaml", "driver_trips.num_trips=2000")
    materialized = run_job_elsewhere(cwd, env, "materialize", "features.yaml", "materialize.end=2030-01-01")
    assert materialized["status"] == "ok", materialized
    assert materialized["views"]["driver_hourly_stats"]["source_rows"] > 0
    assert sorted(p.name for p in (root / "feature_store").iterdir()) == ["online_store.db", "registry.db"]
    assert sorted(p.name for p in (CONFIGS / "feature_store").iterdir()) == project_files
    assert sorted(os.listdir(cwd)) == []
