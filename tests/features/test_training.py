"""A training run that reads its data through the feature service, recorded in MLflow."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from mlray.config import TrainJobConfig
from mlray.features.historical import feature_service_training_data
from mlray.models import load_bundle
from mlray.train import run_training
from tests.features.conftest import FeatureSetup


@pytest.mark.slow
def test_training_through_the_feature_service_completes_and_its_run_records_the_service(
    ray_cluster, feature_setup: FeatureSetup, mlflow_uri, tmp_path
):
    data_kwargs = {
        "entity_source": str(feature_setup.trips_path),
        "features_config": str(feature_setup.config_path),
        "feature_service": "driver_trips_v1",
    }
    config = TrainJobConfig.model_validate(
        {
            "run_name": "through-features",
            "data": {"loader": "mlray.features.historical:feature_service_training_data", "kwargs": data_kwargs},
            "model": {"kwargs": {"hidden": [8]}},
            "training": {"distributed": False, "num_workers": 1, "num_epochs": 2, "batch_size": 64,
                         "checkpointing": {"frequency": 1, "keep_best": 1}},
            "timeouts": {"total_runtime": None, "iteration": None, "no_improvement": None},
            "mlflow": {"tracking_uri": mlflow_uri, "experiment": "features"},
            "storage": {"uri": str(tmp_path / "storage")},
        }
    )  # fmt: skip
    summary = run_training(config)
    assert summary["status"] == "completed", summary

    expected = feature_service_training_data(**data_kwargs)
    tags = MlflowClient(mlflow_uri).get_run(summary["mlflow_run_id"]).data.tags
    assert tags["feature_service.name"] == "driver_trips_v1"
    assert tags["feature_service.version"] == expected.tags["feature_service.version"]
    _, spec = load_bundle(summary["model_uri"])
    assert spec.feature_names == expected.feature_names  # the model takes the service's features, in order
