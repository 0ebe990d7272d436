"""Pieces of training that need no Ray: metrics, stop rules, configs, preprocessing, the loader."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from mlray.config import PreprocessJobConfig, TrainJobConfig
from mlray.config.train import TrainingTimeoutsConfig
from mlray.train.loaders import parquet_frame
from mlray.train.metrics import resolve_metrics
from mlray.usecases.preprocess import DRIVER_STATS_FILE, TRAINING_FILE, TRIPS_FILE, run_preprocessing
from mlray.train.stopping import EarlyStopping, MetricTracker, StopReason, TrainingStops
from tests.train.conftest import training_config


def test_builtin_metrics_on_known_predictions():
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [0.0, 1.0], [1.0, 0.0]])  # predicts 0, 1, 1, 0
    targets = torch.tensor([0, 1, 0, 1])
    metrics = resolve_metrics(["accuracy", "precision", "recall", "f1"])
    values = {key: fn(logits, targets) for key, fn in metrics.items()}
    assert values == {"val_accuracy": 0.5, "val_precision": 0.5, "val_recall": 0.5, "val_f1": 0.5}
    regression = resolve_metrics(["mae", "rmse"])
    outputs, truth = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])
    assert regression["val_mae"](outputs, truth) == pytest.approx(1.5)
    assert regression["val_rmse"](outputs, truth) == pytest.approx((2.5) ** 0.5)


def test_early_stopping_counts_epochs_without_a_big_enough_gain():
    tracker, early = MetricTracker("min", min_delta=0.1), EarlyStopping(patience=2)
    stops = [early.record(tracker.update(value, epoch)) for epoch, value in enumerate([1.0, 0.8, 0.75, 0.5, 0.45, 0.44], 1)]
    assert stops == [False, False, False, False, False, True]
    assert (tracker.best, tracker.best_epoch) == (0.5, 4)


def test_training_stops_name_the_limit_that_fired():
    now = [50.0]  # the epoch and the no-improvement clock start at 50
    timeouts = TrainingTimeoutsConfig(total_runtime=100, iteration=10, no_improvement=30,
                                      improvement={"threshold": 0.5})
    stops = TrainingStops.from_config(timeouts, "max", run_started=0.0, clock=lambda: now[0])
    now[0] = 55
    assert stops.during_epoch() is None
    now[0] = 61
    assert stops.during_epoch() is StopReason.ITERATION
    now[0] = 101
    assert stops.after_epoch(1.0, best=1.0) is StopReason.TOTAL_RUNTIME
    now[0] = 79.0
    stops.start_epoch()
    now[0] = 81
    # a gain below the threshold (1.0 -> 1.4) does not reset the clock
    assert stops.after_epoch(1.4, best=1.0) is StopReason.NO_IMPROVEMENT
    assert stops.no_improvement is not None and stops.no_improvement.last_improvement == 50.0
    assert StopReason.by_code(StopReason.PREEMPTED.code) is StopReason.PREEMPTED and StopReason.by_code(0) is None


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"training": {"metrics": ["auc"]}}, "unknown metric 'auc'"),
        ({"training": {"monitor": {"metric": "val_f1"}, "metrics": ["accuracy"]}}, "is not computed"),
        ({"data": {"loader": "no_colon"}}, "expected 'package.module:function'"),
        ({"run_name": "a/b"}, "run_name"),
    ],
)
def test_training_config_rejects_bad_use_case_settings(section, expected):
    with pytest.raises(ValidationError, match=expected):
        TrainJobConfig.model_validate(section)


def test_preprocessing_writes_feature_store_sources_and_training_frame(tmp_path):
    summary = run_preprocessing(PreprocessJobConfig(output=str(tmp_path), driver_trips={"num_trips": 500,
                                                                                      "num_drivers": 10}))
    assert summary["status"] == "ok"
    for name in (DRIVER_STATS_FILE, TRIPS_FILE, TRAINING_FILE):
        assert (tmp_path / name).is_file()
    assert list(pd.read_parquet(tmp_path / DRIVER_STATS_FILE).columns) == [
        "driver_id", "event_timestamp", "conv_rate", "acc_rate", "avg_daily_trips", "created"]
    data = parquet_frame(str(tmp_path / TRAINING_FILE))
    assert len(data.frame) == summary["rows"]["training"] and data.label == "completed"
    assert data.tags["data.path"].endswith(TRAINING_FILE)


def test_default_loader_says_how_to_make_missing_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="jobs.preprocess"):
        parquet_frame(str(tmp_path / "missing.parquet"))


def test_ray_train_settings_reach_the_environment_and_the_config_wins(monkeypatch, tmp_path):
    from mlray.process_env import ray_train_env
    from mlray.train import runner

    config = training_config(tmp_path, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             training={"health_check_interval_s": 0.7}, spot={"drain_poll_interval_s": 0.3})
    for name in ray_train_env(config):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S", "5")  # set by hand: the config replaces it
    runner.set_ray_train_env(config)
    assert os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.7"
    assert os.environ["RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S"] == "0.3"


def _trained_state(epoch: int) -> dict:
    """A training state as the loop writes it: model, optimizer, scheduler and scaler state dicts."""
    from mlray.models import build_mlp

    model = build_mlp(input_dim=4, hidden=[8])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    return {"epoch": epoch, "model": model.state_dict(), "best_model": None,
            "optimizer": optimizer.state_dict(),
            "scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9).state_dict(),
            "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(), "best_metric": 0.5,
            "best_epoch": epoch, "early_stopping": {"epochs_without_improvement": 0}}


def _draws() -> tuple:
    import random

    import numpy as np

    return (random.random(), random.gauss(0, 1), float(np.random.rand()), float(np.random.randn()),
            torch.rand(1).item())


def test_checkpoints_and_rng_states_load_weights_only_and_resume_the_streams(tmp_path):
    from mlray.train.checkpoint import read_checkpoint, read_rng, restore_rng, write_checkpoint

    _draws()  # leaves a cached gaussian in numpy and in random
    state = _trained_state(3)
    write_checkpoint(tmp_path / "ckpt", state, rank=0)
    expected = _draws()
    restore_rng(read_rng(tmp_path / "ckpt", 0))
    assert _draws() == expected
    loaded = read_checkpoint(tmp_path / "ckpt")
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert all(torch.equal(loaded["model"][k], v) for k, v in state["model"].items())


@pytest.mark.security
@pytest.mark.parametrize("crafted", ["state.pt", "rng_rank0.pt"])
def test_a_checkpoint_carrying_a_pickle_payload_is_refused_and_the_previous_one_used(
    tmp_path, crafted, security_probe
):
    import hashlib
    import json

    from mlray.train.checkpoint import (
        META_FILE,
        CorruptCheckpoint,
        first_valid,
        read_checkpoint,
        read_rng,
        write_checkpoint,
    )
    from mlray.train.session import LocalSession
    from tests.pickle_payloads import pickled_payload

    root, marker = tmp_path / "run", tmp_path / "ran"
    write_checkpoint(root / "epoch_00001-aaaaaaaa", _trained_state(1), rank=0)
    crafted_dir = root / "epoch_00002-bbbbbbbb"
    write_checkpoint(crafted_dir, _trained_state(2), rank=0)
    payload = pickled_payload(marker, "model")
    (crafted_dir / crafted).write_bytes(payload)
    if crafted == "state.pt":  # whoever can write the state can write its digest too
        digest = hashlib.sha256(payload).hexdigest()
        (crafted_dir / META_FILE).write_text(json.dumps({"epoch": 2, "sha256": digest}))
    refusal = "refused by the weights-only loader .*GLOBAL posix.system"
    with pytest.raises(CorruptCheckpoint, match=refusal) as refused:
        read_checkpoint(crafted_dir) if crafted == "state.pt" else read_rng(crafted_dir, 0)
    loaded = first_valid(LocalSession(root).checkpoint_candidates(), rank=0)
    assert loaded is not None and loaded.name == "epoch_00001-aaaaaaaa"
    assert loaded.skipped == [crafted_dir.name]
    assert not marker.exists()
    security_probe("model loading", f"checkpoint whose {crafted} carries a __reduce__ payload "
                   "(digest in meta.json matching)",
                   "refused by the weights-only load; resume uses the previous checkpoint; nothing runs", f"{refused.value}; resumed from {loaded.name}; marker absent")
