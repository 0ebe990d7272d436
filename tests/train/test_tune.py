"""Ray Tune with ASHA over the training loop: trials checkpoint and log MLflow child runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlray.config.loader import ConfigError, load_config
from mlray.config.tune import TuneJobConfig
from mlray.train.tune import run_tuning
from tests.train.conftest import training_config


def write_configs(tmp_path, small_data_dir, **tune_fields):
    training = training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                               training={"num_workers": 1, "num_epochs": 3})
    training_path = tmp_path / "train.yaml"
    training_path.write_text(yaml.safe_dump(training.model_dump(mode="json")))
    tune_path = tmp_path / "tune.yaml"
    tune_path.write_text(yaml.safe_dump({
        "run_name": "search",
        "train_config": str(training_path),
        "search_space": {"training.lr": {"type": "loguniform", "low": 1e-3, "high": 5e-2},
                         "training.batch_size": {"type": "choice", "values": [128, 256]}},
        "num_samples": 4,
        "max_concurrent_trials": 2,
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/m.db", "experiment": "tune-tests"},
        "storage": {"uri": str(tmp_path / "storage")},
        **tune_fields,
    }))
    return tune_path


def test_search_space_key_that_is_not_a_training_field_is_rejected(tmp_path, small_data_dir):
    path = write_configs(tmp_path, small_data_dir,
                         search_space={"training.learning_rate": {"type": "uniform", "low": 0.1, "high": 0.2}})
    with pytest.raises(ConfigError, match="training.learning_rate"):
        load_config(TuneJobConfig, path)


@pytest.mark.slow
def test_asha_search_with_four_trials_reports_the_best(ray_cluster, tmp_path, small_data_dir):
    config = load_config(TuneJobConfig, write_configs(tmp_path, small_data_dir))
    summary = run_tuning(config)
    assert summary["status"] == "completed", summary
    trials = summary["trials"]
    assert len(trials) == 4 and all(t["error"] is None for t in trials)
    assert all(1 <= t["epochs"] <= 3 for t in trials)
    assert any(t["epochs"] == 3 for t in trials)
    # Tune's default scope: each trial's last reported value
    assert summary["best_metrics"]["val_loss"] == pytest.approx(min(t["val_loss"] for t in trials))
    assert set(summary["best_config"]) == {"training.lr", "training.batch_size"}
    assert Path(summary["best_checkpoint_uri"], "meta.json").is_file()

    client = MlflowClient(config.mlflow.tracking_uri)
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4
    assert all(client.get_metric_history(c.info.run_id, "val_loss") for c in children)
    assert {c.info.status for c in children} <= {"FINISHED", "KILLED"}
