"""What one checkpoint holds, how it is written and read, and how a damaged one is skipped."""

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

from mlray.models.trust import UntrustedModel, weights_only_load

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
META_FILE = "meta.json"
RNG_FILE = "rng_rank{rank}.pt"
# The step part is absent from checkpoints written before step-exact resume.
DIR_PATTERN = re.compile(r"^epoch_(\d+)(?:-step_(\d+))?-[0-9a-f]+$")


class CorruptCheckpoint(ValueError):
    """A checkpoint that is incomplete or does not match its own digest."""


def checkpoint_dir_name(epoch: int, step: int = 0) -> str:
    """Unique per report: a run resumed from an older checkpoint never overwrites a newer, damaged one."""
    return f"epoch_{epoch:05d}-step_{step:07d}-{uuid.uuid4().hex[:8]}"


def epoch_of(dir_name: str) -> int | None:
    """Epochs completed when the checkpoint was written (None: not a checkpoint folder)."""
    match = DIR_PATTERN.match(dir_name)
    return int(match.group(1)) if match else None


def progress_of(dir_name: str) -> tuple[int, int] | None:
    """(epochs completed, optimizer steps taken): how checkpoints of one run order, newest last."""
    match = DIR_PATTERN.match(dir_name)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def capture_rng() -> dict[str, Any]:
    """RNG states as tensors and plain numbers, so they load with ``weights_only=True``."""
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate(
        (python_state["version"], tuple(python_state["state"].tolist()), python_state["gauss_next"])
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_checkpoint(directory: Path, state: dict[str, Any] | None, rank: int) -> None:
    """Rank 0 passes the training state; every rank writes its RNG state."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(capture_rng(), directory / RNG_FILE.format(rank=rank))
    if state is not None:
        write_checkpoint_files(directory, _state_files(state))


def write_checkpoint_files(directory: Path, files: dict[str, bytes]) -> None:
    """``files`` into a local ``directory``, one by one in their order (``META_FILE`` last)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)


def checkpoint_files(state: dict[str, Any], rngs: list[dict[str, Any]]) -> dict[str, bytes]:
    """A whole checkpoint written by one process: every rank's RNG file, the state, ``META_FILE`` last."""
    files = {RNG_FILE.format(rank=rank): _torch_bytes(rng) for rank, rng in enumerate(rngs)}
    return {**files, **_state_files(state)}


def _state_files(state: dict[str, Any]) -> dict[str, bytes]:
    """``STATE_FILE`` then ``META_FILE`` (in that order: whoever writes them one by one writes meta last)."""
    payload = _torch_bytes(state)
    meta = {"epoch": state["epoch"], "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload),
            "world_size": state.get("world_size")}
    return {STATE_FILE: payload, META_FILE: json.dumps(meta).encode()}


def _torch_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def detached_copy(value: Any) -> Any:
    """``value`` with every tensor copied to the CPU and every container rebuilt: what a thread may serialize
    while training goes on (``optimizer.state_dict()`` holds the live tensors the next step updates in place)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: detached_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(detached_copy(item) for item in value)
    return value


def read_checkpoint(directory: Path) -> dict[str, Any]:
    """The training state, or CorruptCheckpoint naming what is wrong.

    Loaded weights-only: tensors, numbers and containers; a file that would
    need any other object unpickled is refused, even with a matching digest
    (whoever can write the checkpoint can write its digest too).
    """
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
    # Each rank uploads its own RNG file: one killed mid-upload leaves a state without it.
    missing = [RNG_FILE.format(rank=r) for r in range(meta.get("world_size") or 0)
               if not (directory / RNG_FILE.format(rank=r)).is_file()]
    if missing:
        raise CorruptCheckpoint(f"{', '.join(missing)} missing (a rank's upload did not finish)")
    return _weights_only(payload, STATE_FILE)


def read_rng(directory: Path, rank: int) -> dict[str, Any] | None:
    path = directory / RNG_FILE.format(rank=rank)
    return _weights_only(path.read_bytes(), path.name) if path.is_file() else None


def _weights_only(payload: bytes, name: str) -> Any:
    try:
        return weights_only_load(payload, name)
    except UntrustedModel as exc:
        raise CorruptCheckpoint(str(exc)) from None


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
