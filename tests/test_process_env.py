"""mlray.process_env: every environment variable the platform sets, from the job's config; the config wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlray.config.inference import InferenceConfig
from mlray.config.loader import load_config
from mlray.config.train import TrainJobConfig
from mlray.process_env import PLATFORM_ENV, apply, process_env
from mlray.serve.cluster_env import SERVING_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def training(**overrides: object) -> TrainJobConfig:
    sets = [f"{key}={value}" for key, value in overrides.items()]
    return load_config(TrainJobConfig, None, sets, environ={})


def test_training_env_follows_the_drain_poll_interval_of_the_config():
    assert process_env("train", training())["RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S"] == "1.0"
    env = process_env("train", training(**{"spot.drain_poll_interval_s": 3.5}))
    assert env["RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S"] == "3.5"
    env = process_env("train", training(**{"training.health_check_interval_s": 0.4,
                                           "training.worker_group_start_timeout_s": 20}))
    assert env["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.4"
    assert env["RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"] == "20.0"
    assert {name: env[name] for name in PLATFORM_ENV} == PLATFORM_ENV


def test_other_jobs_get_the_platform_part_and_serving_gets_serves():
    for job in ("tune", "optimize", "preprocess", "batch-predict", "batch_predict", "materialize", "demo"):
        assert process_env(job, training()) == PLATFORM_ENV, job  # Ray Train's settings are training's only
    assert process_env("train") == PLATFORM_ENV  # without a config: only what needs none
    serving = process_env("serve")
    assert serving == {**PLATFORM_ENV, **SERVING_ENV}
    config = load_config(InferenceConfig, None, ["mlflow.tracking_uri=http://mlflow:5000"], environ={})
    assert process_env("serve", config)["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_apply_lets_the_config_value_win():
    environ = {"RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "1", "RAY_USAGE_STATS_ENABLED": "0", "OTHER": "kept"}
    env = process_env("train", training(**{"spot.drain_poll_interval_s": 7}))
    replaced = apply(env, environ)
    assert replaced == {"RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "1"}  # set by hand, replaced by the config's
    assert environ == {**env, "OTHER": "kept"}
    assert apply(env, environ) == {}  # idempotent


def test_platform_defaults_leave_a_value_set_by_hand():
    environ = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "true"}  # a real hierarchical-namespace bucket
    assert apply(process_env("optimize"), environ) == {}
    assert environ == {**PLATFORM_ENV, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "true"}


def test_module_prints_env_words_for_make(tmp_path):
    def printed(*args: str) -> list[str]:
        result = subprocess.run([sys.executable, "-m", "mlray.process_env", *args], cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=120, check=True)
        return result.stdout.split()

    assert printed() == [f"{name}={value}" for name, value in PLATFORM_ENV.items()]
    assert printed("serve") == [f"{name}={value}" for name, value in {**PLATFORM_ENV, **SERVING_ENV}.items()]
    config = tmp_path / "train.yaml"  # the file name says which model validates it
    config.write_text("spot: {drain_poll_interval_s: 3}\n")
    assert "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S=3.0" in printed("train", "--config", str(config))
    words = printed("train", "--config", str(config), "--set", "spot.drain_poll_interval_s=2")
    assert "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S=2.0" in words
