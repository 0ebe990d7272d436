"""Batch inference over Parquet with Ray Data gives what the online route gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlray.cluster.local import client_env
from mlray.config.batch_predict import BatchPredictJobConfig
from mlray.serve.offline.batch import run_batch_inference
from mlray.usecases.driver_trips import FEATURE_COLUMNS
from tests.serve.conftest import assert_same_predictions, expected, sample_rows
from tests.serve.prediction.test_sync_and_registry import registered  # noqa: F401 - fixture: v2 registered as a bundle

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def features_parquet(tmp_path: Path) -> tuple[Path, list[list[float]]]:
    rows = sample_rows(300, seed=8)
    frame = pd.DataFrame(rows, columns=FEATURE_COLUMNS)
    frame.insert(0, "trip_id", range(len(rows)))
    path = tmp_path / "features.parquet"
    frame.to_parquet(path)
    return path, rows


def read_predictions(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder).sort_values("trip_id").reset_index(drop=True)


def test_batch_predictions_equal_the_online_routes(deploy, bundles, features_parquet, tmp_path):
    path, rows = features_parquet
    config = BatchPredictJobConfig.model_validate(
        {"batch": {"input_uri": str(path), "output_uri": str(tmp_path / "out"), "model_uri": bundles.uri("v1"),
                   "batch_size": 64, "concurrency": 1}}
    )
    summary = run_batch_inference(config)
    assert summary["status"] == "ok" and summary["rows"] == len(rows)
    offline = read_predictions(tmp_path / "out")
    assert offline["trip_id"].tolist() == list(range(len(rows)))
    run_batch_inference(config)  # a rerun replaces the predictions instead of appending a second copy
    assert read_predictions(tmp_path / "out")["trip_id"].tolist() == list(range(len(rows)))

    client = deploy()
    online = client.post("/v1/predict", json={"instances": rows}).json()["predictions"]
    batch = [{"label": int(r.label), "probabilities": list(r.probabilities)} for r in offline.itertuples()]
    assert_same_predictions(batch, online)


def test_missing_input_columns_fail_before_any_work(bundles, tmp_path):
    path = tmp_path / "partial.parquet"
    pd.DataFrame({"conv_rate": [0.1]}).to_parquet(path)
    config = BatchPredictJobConfig.model_validate(
        {"batch": {"input_uri": str(path), "output_uri": str(tmp_path / "out"), "model_uri": bundles.uri("v1")}}
    )
    with pytest.raises(ValueError, match=r"lacks model input columns \['acc_rate'"):
        run_batch_inference(config)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_job_entrypoint_joins_the_cluster_and_prints_a_summary(ray_cluster, bundles, features_parquet, tmp_path):
    """What ``ray job submit -- python -m jobs.batch_predict ...`` runs: the entrypoint with RAY_ADDRESS set."""
    path, rows = features_parquet
    config_file = tmp_path / "batch_predict.yaml"
    config_file.write_text(yaml.safe_dump({"batch": {
        "input_uri": str(path), "output_uri": str(tmp_path / "job_out"), "model_uri": bundles.uri("v2"),
        "concurrency": 1,
    }}))
    env = {**client_env(), "RAY_ADDRESS": ray_cluster.gcs_address}
    command = [sys.executable, "-m", "jobs.batch_predict", "--config", str(config_file)]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["job"] == "batch_predict" and summary["status"] == "ok" and summary["rows"] == len(rows)
    assert len(read_predictions(tmp_path / "job_out")) == len(rows)
    # Progress in a job log (no terminal): Ray Data's own periodic lines, which mlray leaves on.
    assert "Total Progress" in result.stdout + result.stderr, result.stdout[-3000:] + result.stderr[-3000:]


def test_an_invalid_config_exits_2_naming_the_field(tmp_path):
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("batch: {batch_size: 0}\n")
    result = subprocess.run([sys.executable, "-m", "jobs.batch_predict", "--config", str(config_file)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "batch.batch_size" in result.stderr


def test_batch_inference_reads_a_registry_alias_through_the_same_safe_loader(
    ray_cluster, registered, bundles, features_parquet, tmp_path
):
    path, rows = features_parquet
    config = BatchPredictJobConfig.model_validate(
        {"batch": {"input_uri": str(path), "output_uri": str(tmp_path / "out"),
                   "model_uri": "models:/driver-trips@champion", "concurrency": 1},
         "mlflow": {"tracking_uri": registered}}
    )
    summary = run_batch_inference(config)
    assert summary["status"] == "ok" and summary["rows"] == len(rows)
    offline = read_predictions(tmp_path / "out")
    batch = [{"label": int(r.label), "probabilities": list(r.probabilities)} for r in offline.itertuples()]
    assert_same_predictions(batch, expected(bundles, "v2", rows))
