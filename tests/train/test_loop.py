"""The training loop in one process (no Ray): stop rules, exact resume, damaged checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from mlray.train.checkpoint import META_FILE, STATE_FILE
from mlray.train.loop import LoopSettings, train_loop
from mlray.train.prepare import load_training_data, model_spec, split
from mlray.train.session import LocalSession
from tests.train.conftest import training_config

SCRIPTED_VALUES: list[float] = []


def scripted(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """A validation metric whose per-epoch values the test dictates."""
    return SCRIPTED_VALUES.pop(0)


def run_local(config, root: Path) -> tuple[LocalSession, dict]:
    data = split(load_training_data(config), config.training.validation_fraction, config.training.seed,
                 config.model.task)
    session = LocalSession(root)
    last = train_loop(LoopSettings(config, model_spec(config, data)), data, session)
    return session, last


def local_config(data_dir: Path, tmp_path: Path, **training):
    return training_config(data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                           training={"num_workers": 1, "distributed": False, **training})


def test_early_stopping_stops_after_patience_epochs_without_improvement(small_data_dir, tmp_path):
    SCRIPTED_VALUES[:] = [0.50, 0.60, 0.60, 0.605, 0.70, 0.80]
    config = local_config(small_data_dir, tmp_path, num_epochs=6, metrics=["tests.train.test_loop:scripted"],
                          monitor={"metric": "val_scripted", "mode": "max"},
                          early_stopping={"enabled": True, "patience": 2, "min_delta": 0.01})
    session, last = run_local(config, tmp_path / "ckpt")
    # epoch 3 ties and epoch 4 gains less than min_delta: two epochs without improvement.
    assert [r["epoch"] for r in session.reports] == [1, 2, 3, 4]
    assert last["status"] == "early_stopped"
    assert last["best_val_scripted"] == pytest.approx(0.60)
    assert SCRIPTED_VALUES == [0.70, 0.80]


def test_resumed_run_matches_an_uninterrupted_one_exactly(small_data_dir, tmp_path):
    """Model, optimizer, scheduler, sampler epoch and RNG (dropout) all come back from the checkpoint."""
    overrides = dict(num_epochs=4, lr_decay=0.9, checkpointing={"frequency": 2, "keep_best": 1})
    straight = local_config(small_data_dir, tmp_path, **overrides)
    straight = straight.model_copy(update={"model": straight.model.model_copy(update={"kwargs": {"hidden": [8], "dropout": 0.3}})})
    _, uninterrupted = run_local(straight, tmp_path / "a")

    first_half = straight.model_copy(update={"training": straight.training.model_copy(update={"num_epochs": 2})})
    run_local(first_half, tmp_path / "b")
    session, resumed = run_local(straight, tmp_path / "b")
    assert [r["epoch"] for r in session.reports] == [3, 4]
    assert resumed["train_loss"] == uninterrupted["train_loss"]
    assert resumed["val_loss"] == uninterrupted["val_loss"]


@pytest.mark.parametrize("damage", ["truncate_state", "drop_meta"])
def test_damaged_latest_checkpoint_is_skipped_for_the_previous_one(small_data_dir, tmp_path, caplog, damage):
    config = local_config(small_data_dir, tmp_path, num_epochs=2, checkpointing={"frequency": 1})
    root = tmp_path / "ckpt"
    run_local(config, root)
    latest = max(root.iterdir())
    assert latest.name.startswith("epoch_00002")
    if damage == "truncate_state":
        state = latest / STATE_FILE
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    else:
        (latest / META_FILE).unlink()

    more = config.model_copy(update={"training": config.training.model_copy(update={"num_epochs": 3})})
    with caplog.at_level(logging.WARNING, logger="mlray.train.checkpoint"):
        session, last = run_local(more, root)
    assert "skipping corrupt checkpoint" in caplog.text and latest.name in caplog.text
    assert [r["epoch"] for r in session.reports] == [2, 3]  # resumed after epoch 1
    assert last["status"] == "completed"
