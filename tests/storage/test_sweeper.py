"""Storage hygiene: what killed uploads leave is removed, what is in use or registered stays."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from mlray.storage import Storage
from mlray.storage.filesystem import TEMP_PREFIX
from mlray.train.checkpoint import (
    checkpoint_dir_name,
    first_valid,
    prune_unregistered_checkpoints,
    tidy_run_storage,
    write_checkpoint,
)
from mlray.train.session import LocalSession
from tests.waiting import wait_for

MAX_AGE_S = 3600.0


@pytest.fixture(params=["local", "gcs"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return Storage(str(tmp_path / "store"))
    return Storage(request.getfixturevalue("gcs_uri"))


def modified(storage: Storage, relpath: str) -> float:
    storage.fs.invalidate_cache()
    return storage.fs.modified(storage.path(relpath)).timestamp()


@pytest.mark.security
def test_stale_temporaries_are_swept_and_fresh_ones_kept(storage, security_probe):
    stale, fresh = f"ckpt/{TEMP_PREFIX}0a1b-state.pt", f"ckpt/{TEMP_PREFIX}2c3d-state.pt"
    storage.write_bytes("ckpt/state.pt", b"published")
    storage.fs.pipe(storage.path(stale), b"half an upload, its writer killed")
    storage.fs.pipe(storage.path(fresh), b"an upload in progress")

    def written_after_stale() -> bool:
        if modified(storage, fresh) > modified(storage, stale):
            return True
        storage.fs.pipe(storage.path(fresh), b"an upload in progress")  # same clock tick: write again
        return False

    wait_for(written_after_stale, 10, "the fresh temporary to be written after the stale one")
    assert storage.sweep_temporaries(MAX_AGE_S) == []  # by the real clock both are young
    # The moment the stale one turns MAX_AGE_S old while the fresh one is still younger.
    now = (modified(storage, stale) + modified(storage, fresh)) / 2 + MAX_AGE_S
    removed = storage.sweep_temporaries(MAX_AGE_S, now=now)
    assert removed == [storage.url(stale)]
    assert not storage.exists(stale) and storage.exists(fresh)
    assert storage.read_bytes("ckpt/state.pt") == b"published"
    where = "GCS emulator" if storage.is_remote else "local folder"
    security_probe("storage hygiene", f"a killed upload's .tmp-* object older than stale_temp_after_s and a "
                   f"fresh one ({where})",
                   "stale one removed; the upload in progress and published objects kept",
                   f"removed {[Path(u).name for u in removed]}; kept {Path(fresh).name}, state.pt")


def test_without_rays_snapshot_no_checkpoint_counts_as_unregistered(tmp_path):
    run = Storage(str(tmp_path / "run"))
    write_checkpoint(Path(run.path(checkpoint_dir_name(1))), {"epoch": 1}, rank=0)
    assert prune_unregistered_checkpoints(run) == []
    assert len(run.list()) == 1


def report_three_checkpoints(config: dict) -> None:
    """A Ray Train worker reporting epochs 1-3 with checkpoints in mlray's layout."""
    import ray.train

    for epoch in (1, 2, 3):
        with tempfile.TemporaryDirectory() as folder:
            write_checkpoint(Path(folder), {"epoch": epoch}, rank=0)
            ray.train.report({"epoch": epoch}, checkpoint=ray.train.Checkpoint.from_directory(folder),
                             checkpoint_dir_name=checkpoint_dir_name(epoch))


@pytest.mark.slow
@pytest.mark.security
def test_checkpoint_folders_ray_never_registered_are_pruned_and_the_latest_stays(
    ray_cluster, tmp_path, security_probe
):
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(report_three_checkpoints, scaling_config=ScalingConfig(num_workers=1),
                           run_config=RunConfig(name="hygiene", storage_path=str(tmp_path),
                                                checkpoint_config=CheckpointConfig(num_to_keep=1)))
    result = trainer.fit()
    run = Storage(str(tmp_path)).child("hygiene")
    latest = Path(result.checkpoint.path).name
    # What an upload killed before its report leaves: a complete-looking folder Ray never heard of.
    orphan = checkpoint_dir_name(4)
    write_checkpoint(Path(run.path(orphan)), {"epoch": 4}, rank=0)
    assert sorted(name for name in run.list() if name.startswith("epoch_")) == sorted([latest, orphan])

    tidied = tidy_run_storage(run, MAX_AGE_S)
    assert tidied["unregistered_checkpoints"] == [run.url(orphan)]
    assert [name for name in run.list() if name.startswith("epoch_")] == [latest]
    resumed = first_valid(LocalSession(Path(run.path())).checkpoint_candidates(), rank=0)
    assert resumed is not None and resumed.name == latest and resumed.state["epoch"] == 3
    security_probe("storage hygiene", "a checkpoint folder Ray Train never registered beside the run's "
                   "registered latest", "unregistered folder pruned; the registered latest kept and loadable",
                   f"pruned {orphan}; kept {latest} (epoch {resumed.state['epoch']})")
