"""Training checkpoints: what one holds, how it is written and how a damaged one is skipped.

A checkpoint directory (``epoch_00005-<id>``) holds::

    state.pt        model, best model, optimizer, scheduler, scaler, epoch, best metric,
                    early-stopping state (rank 0)
    rng_rank<R>.pt  RNG states of rank R (torch, CUDA, numpy, random)
    meta.json       epoch, sha256 of state.pt: written last, so a checkpoint
                    without it, or whose state.pt does not match it, is incomplete

Ray Train uploads the directory to the run's storage and keeps the best K
plus the latest (``CheckpointConfig``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
META_FILE = "meta.json"
RNG_FILE = "rng_rank{rank}.pt"
DIR_PATTERN = re.compile(r"^epoch_(\d+)-[0-9a-f]+$")


class CorruptCheckpoint(ValueError):
    """A checkpoint that is incomplete or does not match its own digest."""


def checkpoint_dir_name(epoch: int) -> str:
    """Unique per report: a run resumed from an older checkpoint never overwrites a newer, damaged one."""
    return f"epoch_{epoch:05d}-{uuid.uuid4().hex[:8]}"


def epoch_of(dir_name: str) -> int | None:
    match = DIR_PATTERN.match(dir_name)
    return int(match.group(1)) if match else None


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_checkpoint(directory: Path, state: dict[str, Any] | None, rank: int) -> None:
    """Rank 0 passes the training state; every rank writes its RNG state."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(capture_rng(), directory / RNG_FILE.format(rank=rank))
    if state is None:
        return
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    (directory / STATE_FILE).write_bytes(payload)
    meta = {"epoch": state["epoch"], "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
    (directory / META_FILE).write_text(json.dumps(meta))


def read_checkpoint(directory: Path) -> dict[str, Any]:
    """The training state, or CorruptCheckpoint naming what is wrong."""
    meta_path, state_path = directory / META_FILE, directory / STATE_FILE
    if not meta_path.is_file() or not state_path.is_file():
        raise CorruptCheckpoint(f"{META_FILE} or {STATE_FILE} missing (half-written)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CorruptCheckpoint(f"{META_FILE} unreadable ({exc})") from None
    payload = state_path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != meta.get("sha256"):
        raise CorruptCheckpoint(f"{STATE_FILE} does not match its sha256 ({len(payload)} bytes)")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)


def read_rng(directory: Path, rank: int) -> dict[str, Any] | None:
    path = directory / RNG_FILE.format(rank=rank)
    return torch.load(path, weights_only=False) if path.is_file() else None


@dataclass
class LoadedCheckpoint:
    name: str
    state: dict[str, Any]
    rng: dict[str, Any] | None
    skipped: list[str]


def first_valid(candidates: Iterable[tuple[str, Any]], rank: int) -> LoadedCheckpoint | None:
    """The newest checkpoint that loads; each damaged one is skipped with a warning.

    ``candidates`` yields ``(name, ray.train.Checkpoint)``, newest first.
    """
    skipped: list[str] = []
    for name, checkpoint in candidates:
        try:
            with checkpoint.as_directory() as local:
                state = read_checkpoint(Path(local))
                rng = read_rng(Path(local), rank)
        except CorruptCheckpoint as exc:
            log.warning("skipping corrupt checkpoint %s: %s", name, exc)
            skipped.append(name)
            continue
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is skipped, not fatal
            log.warning("skipping unreadable checkpoint %s: %s: %s", name, type(exc).__name__, exc)
            skipped.append(name)
            continue
        return LoadedCheckpoint(name=name, state=state, rng=rng, skipped=skipped)
    if skipped:
        log.warning("none of the %d checkpoints loads: starting from scratch", len(skipped))
    return None
