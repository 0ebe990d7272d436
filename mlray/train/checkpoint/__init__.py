"""Training checkpoints: what one holds, how it is written, stored, found, and how a damaged one is skipped.

A checkpoint directory (``epoch_00005-step_0000640-<id>``: epochs completed, optimizer steps taken)
holds::

    state.pt        model, best model, optimizer, scheduler, scaler, epoch, step, position inside
                    the epoch in progress (batches done, their losses), best metric,
                    early-stopping state (rank 0)
    rng_rank<R>.pt  RNG states of rank R (torch, CUDA, numpy, random)
    meta.json       epoch, sha256 of state.pt, world size: written last, so a checkpoint
                    without it, whose state.pt does not match it, or without the RNG
                    file of every rank, is incomplete

Ray Train uploads the directory to the run's storage and keeps the best K
plus the latest (``CheckpointConfig``); step checkpoints are written there by rank 0
alone (``checkpoint_files``), every rank's RNG file included. Folders Ray never
registered (an upload killed before its report, a step checkpoint stored while
Ray's controller was behind, a crash between Ray's snapshot and its deletions) and
``.tmp-*`` objects of killed uploads are removed by ``tidy_run_storage``, at the
start and end of each training run or by hand (``python -m mlray.train.tidy``).

Modules: ``files`` (format, write, read, first valid), ``upload`` (storing: step-checkpoint writer, Ray
Train's upload hooks), ``discovery`` (a run's checkpoints, newest first), ``report`` (from the loop),
``hygiene`` (unregistered folders, stale temporaries). Everything is importable from here.
"""

from mlray.train.checkpoint.discovery import (LocalDirCheckpoint, local_checkpoints, sibling_checkpoints,
                                              stored_checkpoints)
from mlray.train.checkpoint.files import (DIR_PATTERN, META_FILE, RNG_FILE, STATE_FILE, CorruptCheckpoint,
                                          LoadedCheckpoint, capture_rng, checkpoint_dir_name, checkpoint_files,
                                          detached_copy, epoch_of, first_valid, progress_of, read_checkpoint,
                                          read_rng, restore_rng, write_checkpoint, write_checkpoint_files)
from mlray.train.checkpoint.hygiene import prune_unregistered_checkpoints, registered_checkpoints, tidy_run_storage
from mlray.train.checkpoint.report import report_step_checkpoint, report_with_checkpoint
from mlray.train.checkpoint.upload import (StepCheckpointWriter, copy_checkpoint_files, once_stored,
                                           store_checkpoint_files, upload_with_fsspec)

__all__ = [
    "DIR_PATTERN", "META_FILE", "RNG_FILE", "STATE_FILE", "CorruptCheckpoint", "LoadedCheckpoint",
    "LocalDirCheckpoint", "StepCheckpointWriter", "capture_rng", "checkpoint_dir_name", "checkpoint_files",
    "copy_checkpoint_files", "detached_copy", "epoch_of", "first_valid", "local_checkpoints", "once_stored",
    "progress_of", "prune_unregistered_checkpoints", "read_checkpoint", "read_rng", "registered_checkpoints",
    "report_step_checkpoint", "report_with_checkpoint", "restore_rng", "sibling_checkpoints", "store_checkpoint_files", "stored_checkpoints", "tidy_run_storage",
    "upload_with_fsspec", "write_checkpoint", "write_checkpoint_files",
]
