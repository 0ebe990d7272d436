"""Step checkpoints stored in the background (no Ray needed): what the training thread hands over is a copy,
one process writes the whole checkpoint with meta.json last, and the writer's failures and leftovers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from pyarrow import fs as pafs

from mlray.train.checkpoint import (META_FILE, RNG_FILE, STATE_FILE, CorruptCheckpoint, StepCheckpointWriter,
                                    capture_rng, checkpoint_files, detached_copy, read_checkpoint, read_rng)


def optimizer_after_one_step() -> torch.optim.Optimizer:
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    return optimizer


def test_the_snapshot_does_not_follow_the_live_optimizer_state():
    optimizer = optimizer_after_one_step()
    snapshot = detached_copy({"optimizer": optimizer.state_dict(), "epoch": 1})
    moment = optimizer.state_dict()["state"][0]["exp_avg"]
    frozen = snapshot["optimizer"]["state"][0]["exp_avg"]
    assert torch.equal(frozen, moment)
    optimizer.step()  # what the next training step does while the writer serializes
    assert not torch.equal(frozen, optimizer.state_dict()["state"][0]["exp_avg"])


def test_one_process_writes_every_ranks_rng_and_the_state_with_meta_last(tmp_path):
    rngs = [capture_rng(), {**capture_rng(), "torch": torch.Generator().manual_seed(7).get_state()}]
    files = checkpoint_files({"epoch": 2, "step": 40, "world_size": 2, "model": {"w": torch.ones(2)}}, rngs)
    assert list(files)[-1] == META_FILE and set(files) == {RNG_FILE.format(rank=0), RNG_FILE.format(rank=1),
                                                           STATE_FILE, META_FILE}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert read_checkpoint(tmp_path)["step"] == 40
    assert torch.equal(read_rng(tmp_path, 1)["torch"], rngs[1]["torch"])
    (tmp_path / RNG_FILE.format(rank=1)).unlink()  # a rank's state missing: not a checkpoint to resume from
    with pytest.raises(CorruptCheckpoint, match="rng_rank1"):
        read_checkpoint(tmp_path)


def files_of(step: int):
    state = {"epoch": 0, "step": step, "world_size": 1, "model": {"w": torch.full((2,), float(step))}}
    return lambda: checkpoint_files(state, [capture_rng()])


def test_an_unregistered_checkpoint_is_deleted_once_a_newer_one_is_stored(tmp_path):
    writer, local = StepCheckpointWriter(), pafs.LocalFileSystem()
    folder = {step: str(tmp_path / f"step_{step}") for step in (10, 20, 30)}
    writer.store(files_of(10), local, folder[10], registered=False)
    writer.store(files_of(20), local, folder[20], registered=True)
    writer.store(files_of(30), local, folder[30], registered=False)
    writer.wait()
    assert not Path(folder[10]).exists()  # stored, never registered, superseded by step 20
    assert read_checkpoint(Path(folder[20]))["step"] == 20  # registered: Ray's to keep or delete
    assert read_checkpoint(Path(folder[30]))["step"] == 30


def test_a_failed_write_is_raised_on_the_training_thread_and_leaves_no_meta(tmp_path):
    writer, local = StepCheckpointWriter(), pafs.LocalFileSystem()
    thread_names: list[str] = []

    def failing() -> dict[str, bytes]:
        thread_names.append(threading.current_thread().name)
        raise OSError("disk full")

    writer.store(failing, local, str(tmp_path / "broken"), registered=True)
    with pytest.raises(OSError, match="disk full"):
        writer.wait()
    assert thread_names and thread_names[0] != threading.current_thread().name
    assert not (tmp_path / "broken" / META_FILE).exists()
    with pytest.raises(OSError, match="disk full"):  # the next step checkpoint does not paper over it
        writer.store(files_of(10), local, str(tmp_path / "next"), registered=True)
