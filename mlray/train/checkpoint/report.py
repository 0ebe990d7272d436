"""Reporting a checkpoint from the loop: at an epoch's end (every rank writes its part) or inside an epoch
(rank 0's session stores the whole of it while training goes on)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlray.train.checkpoint.files import (capture_rng, checkpoint_dir_name, checkpoint_files, detached_copy,
                                          write_checkpoint)
from mlray.train.distributed import all_gather_objects, broadcast_from_rank0

if TYPE_CHECKING:
    from mlray.metrics.train import TrainMetrics
    from mlray.train.session import Session


def report_with_checkpoint(session: Session, metrics: dict[str, Any], state: dict[str, Any],
                           observed: TrainMetrics | None = None) -> None:
    """Every rank writes its RNG state, rank 0 the training state; Ray merges the folders."""
    name = broadcast_from_rank0(checkpoint_dir_name(state["epoch"], state.get("step", 0)))
    state = {**state, "world_size": session.world_size}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlray-ckpt-") as local:
        write_checkpoint(Path(local), state if session.rank == 0 else None, session.rank)
        session.report(metrics, Path(local), name)
        if observed is not None:  # report() returns once the checkpoint is in storage
            size = sum(path.stat().st_size for path in Path(local).rglob("*") if path.is_file())
            observed.checkpoint(size, time.monotonic() - started)


def report_step_checkpoint(session: Session, metrics: dict[str, Any], state: dict[str, Any] | None,
                           observed: TrainMetrics | None = None) -> None:
    """A checkpoint inside an epoch (``state``: rank 0's, None elsewhere), stored while training goes on.

    All the training thread does: copy rank 0's state, and one collective that brings every rank's RNG
    state, the folder name and whether to register to every rank. Rank 0's session serializes and stores
    the whole checkpoint on its own thread (the replicas' model and optimizer are rank 0's, so only their
    RNG states travel); a checkpoint reaches storage complete, ``META_FILE`` last.
    """
    started = time.monotonic()
    mine: tuple[dict[str, Any], str | None, bool] = (capture_rng(), None, False)
    if state is not None:
        state = detached_copy({**state, "world_size": session.world_size})
        mine = (mine[0], checkpoint_dir_name(state["epoch"], state["step"]), session.can_register_now())
    gathered = all_gather_objects(mine)
    _, name, register = gathered[0]
    files = None
    if state is not None:
        rngs, waited = [rng for rng, _, _ in gathered], time.monotonic() - started

        def files() -> dict[str, bytes]:  # on the session's thread
            encoded = checkpoint_files(state, rngs)
            if observed is not None:  # what training waited for, not the storing
                observed.checkpoint(sum(len(data) for data in encoded.values()), waited)
            return encoded
    session.report_step_checkpoint(metrics, name, files, register)
