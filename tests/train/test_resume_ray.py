"""Step-exact resume on Ray Train: SIGTERM to a worker or to the driver inside an epoch, then the run goes
on at the next step with the losses of a run that was never interrupted, step for step (2-rank DDP, CPU).
SIGKILL without notice, with step checkpoints uploaded in the background, loses at most the interval."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from mlray.storage import Storage
from mlray.train.checkpoint import progress_of
from mlray.train.runner import run_training
from mlray.train.step_log import StepLog, read_step_log
from tests.train.conftest import training_config
from tests.train.test_ray_training import POLL_S, WorkerSignaller, checkpoint_names, registered_checkpoints
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
NUM_EPOCHS = 12


def read_steps(path: Path) -> list[tuple[int, float]]:
    """Every logged step in order, repeats included (a restart that redid steps shows them twice)."""
    return [(step, loss) for part in read_step_log(path) for step, loss, _ in part]


def segments(path: Path) -> list[list[int]]:
    """The steps each start of the workers took, one list per start that took any."""
    return [[step for step, _, _ in part] for part in read_step_log(path)]


def first_steps(path: Path) -> list[int]:
    return [part[0] for part in segments(path)]


def steps_logged(path: Path) -> int:
    steps = read_steps(path)
    return steps[-1][0] if steps else 0


def config_for(small_data_dir: Path, tmp_path: Path, run_name: str, **checkpointing: Any):
    return training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                           run_name=run_name, model={"kwargs": {"hidden": [8], "dropout": 0.2}},
                           training={"num_epochs": NUM_EPOCHS, "batch_size": 16, "lr_decay": 0.9,
                                     "stop_check_batches": 4, "max_failures": 3,
                                     "checkpointing": {"frequency": 1000, "keep_best": 1, **checkpointing}},
                           mlflow={"enabled": False})


@pytest.fixture(scope="module")
def uninterrupted(ray_cluster, small_data_dir, tmp_path_factory) -> dict[int, float]:
    """Per-step losses of the same run, never interrupted."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    summary = run_training(config_for(small_data_dir, tmp, "straight"), callbacks=[StepLog(str(tmp / "steps"))])
    assert summary["status"] == "completed", summary
    steps = read_steps(tmp / "steps")
    assert [s for s, _ in steps] == list(range(1, len(steps) + 1))
    return dict(steps)


def assert_step_exact(log: list[tuple[int, float]], uninterrupted: dict[int, float]) -> None:
    """Each step ran once, in order, all of them, each with the uninterrupted run's loss."""
    assert [step for step, _ in log] == list(range(1, len(uninterrupted) + 1))
    assert [loss for _, loss in log] == pytest.approx([uninterrupted[s] for s, _ in log], rel=1e-5, abs=1e-7)


def test_sigterm_to_a_worker_mid_epoch_resumes_at_the_next_step(ray_cluster, small_data_dir, tmp_path,
                                                                 uninterrupted):
    config = config_for(small_data_dir, tmp_path, "worker-exact")
    steps_per_epoch = len(uninterrupted) // NUM_EPOCHS
    log = tmp_path / "steps"
    signaller = WorkerSignaller(ray_cluster.dashboard_url, signal.SIGTERM,
                                ready=lambda: steps_logged(log) >= steps_per_epoch + steps_per_epoch // 3)
    summary = run_training(config, callbacks=[StepLog(str(log))])
    signaller.join()
    assert summary["status"] == "completed", summary
    assert_step_exact(read_steps(log), uninterrupted)
    starts = first_steps(log)
    # One restart, from the notice checkpoint, which stood inside an epoch.
    assert len(starts) == 2 and starts[0] == 1 and (starts[1] - 1) % steps_per_epoch != 0, starts


def test_sigterm_to_the_driver_mid_epoch_resumes_at_the_next_step(ray_cluster, small_data_dir, tmp_path,
                                                                  uninterrupted):
    config = config_for(small_data_dir, tmp_path, "driver-exact")
    steps_per_epoch = len(uninterrupted) // NUM_EPOCHS
    log = tmp_path / "steps"

    def terminate_the_driver() -> None:  # this process: run_training relays SIGTERM to the workers
        wait_for(lambda: steps_logged(log) >= steps_per_epoch + steps_per_epoch // 3, 180, "epoch 2", POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_the_driver, daemon=True).start()
    stopped = run_training(config, callbacks=[StepLog(str(log))])
    assert stopped["status"] == "preempted", stopped
    stopped_after = steps_logged(log)
    (checkpoint,) = checkpoint_names(Storage(config.storage.uri), "driver-exact")
    assert progress_of(checkpoint) == (stopped_after // steps_per_epoch, stopped_after)
    assert stopped_after % steps_per_epoch != 0  # inside an epoch

    resumed = run_training(config, callbacks=[StepLog(str(log))])
    assert resumed["status"] == "completed", resumed
    assert_step_exact(read_steps(log), uninterrupted)


def test_sigkill_without_notice_resumes_from_the_newest_complete_step_checkpoint(ray_cluster, small_data_dir,
                                                                                  tmp_path, uninterrupted):
    """Lost: the steps since the last step checkpoint whose upload had completed, so less than the interval
    plus the steps taken while the newest one was still uploading (here, less than two intervals)."""
    every = 30
    config = config_for(small_data_dir, tmp_path, "sigkill-steps", every_n_steps=every)
    log = tmp_path / "steps"
    # Kill once Ray registered a step checkpoint past the first epoch: no notice, no checkpoint of its own.
    steps_per_epoch = len(uninterrupted) // NUM_EPOCHS

    def registered_step() -> int:
        names = [line for line in registered_checkpoints(config).split('"') if progress_of(line)]
        return max((progress_of(name)[1] for name in names), default=0)

    killer = WorkerSignaller(ray_cluster.dashboard_url, signal.SIGKILL,
                             ready=lambda: registered_step() > steps_per_epoch)
    summary = run_training(config, callbacks=[StepLog(str(log))])
    killer.join()
    assert summary["status"] == "completed", summary
    steps = read_steps(log)
    before, after = segments(log)
    assert before[0] == 1
    killed_at, resumed_at = before[-1], after[0]
    assert resumed_at <= killed_at + 1 and killed_at - (resumed_at - 1) < 2 * every, (killed_at, resumed_at)
    assert (resumed_at - 1) % every == 0 and resumed_at > steps_per_epoch  # from a registered step checkpoint
    # Before and after the restart, each step's loss is the uninterrupted run's.
    assert [loss for _, loss in steps] == pytest.approx([uninterrupted[s] for s, _ in steps], rel=1e-5, abs=1e-7)
    assert max(step for step, _ in steps) == len(uninterrupted)
