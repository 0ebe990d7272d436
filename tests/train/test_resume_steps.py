"""Step-exact resume in one process (no Ray): a run stopped inside an epoch goes on at the next step,
with the same losses step for step as a run that was never stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlray.train.callbacks import TrainingCallback
from mlray.train.checkpoint import progress_of
from mlray.train.loop import LoopSettings, train_loop
from mlray.train.prepare import load_training_data, model_spec, split
from mlray.train.session import LocalSession
from tests.train.conftest import training_config


@dataclass
class StepRecordingSession(LocalSession, TrainingCallback):
    """A session that is its own callback: records each step's loss; asks itself to stop (as SIGTERM would)
    once ``stop_at_step`` is done."""

    stop_at_step: int | None = None
    crash_at_step: int | None = None
    step_losses: dict[int, float] = field(default_factory=dict)

    def after_step(self, step: int, loss: float) -> None:
        self.step_losses[step] = loss
        if step == self.stop_at_step:
            self.stop_event.set()
        if step == self.crash_at_step:
            raise KeyboardInterrupt(f"crash after step {step}")


def dropout_config(data_dir: Path, tmp_path: Path, **training):
    """Dropout draws from torch's RNG at every step, so a resume that restores it a step off diverges."""
    config = training_config(data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             model={"kwargs": {"hidden": [8], "dropout": 0.3}},
                             training={"num_workers": 1, "distributed": False, "num_epochs": 3, "batch_size": 64,
                                       "lr_decay": 0.8, "stop_check_batches": 4, **training})
    return config


def run(config, session: StepRecordingSession) -> dict:
    data = split(load_training_data(config), config.training.validation_fraction, config.training.seed,
                 config.model.task)
    return train_loop(LoopSettings(config, model_spec(config, data)), data, session, [session])


def test_a_run_stopped_inside_an_epoch_resumes_at_the_next_step_with_identical_losses(small_data_dir, tmp_path):
    config = dropout_config(small_data_dir, tmp_path, checkpointing={"frequency": 1000, "keep_best": 1})
    straight = StepRecordingSession(tmp_path / "straight")
    uninterrupted = run(config, straight)
    steps = len(straight.step_losses)
    steps_per_epoch = steps // config.training.num_epochs
    stop_at = steps_per_epoch + 5  # inside epoch 2, between two stop checks
    assert stop_at % config.training.stop_check_batches != 0 and stop_at < 2 * steps_per_epoch

    first = StepRecordingSession(tmp_path / "b", stop_at_step=stop_at)
    stopped = run(config, first)
    assert stopped["status"] == "preempted"
    stopped_after = max(first.step_losses)  # the ranks agree at the next stop check (every 4th batch of an epoch)
    assert 0 <= stopped_after - stop_at < 4 and (stopped_after - steps_per_epoch) % 4 == 0
    (checkpoint,) = [p.name for p in first.checkpoint_root.iterdir()]
    assert progress_of(checkpoint) == (1, stopped_after)

    second = StepRecordingSession(tmp_path / "b")
    resumed = run(config, second)
    assert min(second.step_losses) == stopped_after + 1  # not one step repeated or skipped
    combined = {**first.step_losses, **second.step_losses}
    assert sorted(combined) == list(range(1, steps + 1))
    assert [combined[s] for s in range(1, steps + 1)] == pytest.approx(
        [straight.step_losses[s] for s in range(1, steps + 1)], rel=1e-6, abs=1e-9)
    assert resumed["status"] == "completed"
    assert resumed["lr"] == pytest.approx(uninterrupted["lr"])  # the stopped epoch did not decay it twice
    assert resumed["train_loss"] == pytest.approx(uninterrupted["train_loss"], rel=1e-6)
    assert resumed["val_loss"] == pytest.approx(uninterrupted["val_loss"], rel=1e-6)


def test_step_checkpoints_bound_what_a_crash_loses_to_the_interval(small_data_dir, tmp_path):
    every = 7
    config = dropout_config(small_data_dir, tmp_path, checkpointing={"frequency": 1000, "keep_best": 1,
                                                                     "every_n_steps": every})
    straight = StepRecordingSession(tmp_path / "straight")
    run(config, straight)

    crash_at = 2 * every + 3
    crashed = StepRecordingSession(tmp_path / "b", crash_at_step=crash_at)
    with pytest.raises(KeyboardInterrupt):
        run(config, crashed)
    saved = sorted(progress_of(p.name)[1] for p in crashed.checkpoint_root.iterdir())
    assert saved == [every, 2 * every]

    resumed = StepRecordingSession(tmp_path / "b")
    run(config, resumed)
    first_step = min(resumed.step_losses)
    assert first_step == 2 * every + 1 and crash_at - (first_step - 1) <= every
    for step, loss in resumed.step_losses.items():
        assert loss == pytest.approx(straight.step_losses[step], rel=1e-6, abs=1e-9), step
