"""Finding a run's checkpoints, newest (epoch, step) first: what a restart may resume from."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlray.train.checkpoint.files import progress_of


@dataclass
class LocalDirCheckpoint:
    path: Path

    @contextmanager
    def as_directory(self) -> Iterator[str]:
        yield str(self.path)


def local_checkpoints(root: Path) -> Iterator[tuple[str, LocalDirCheckpoint]]:
    """The checkpoint folders under a local ``root``, newest (epoch, step) first."""
    if not root.is_dir():
        return
    named = [(progress_of(p.name), p) for p in root.iterdir() if p.is_dir()]
    for _, path in sorted(((e, p) for e, p in named if e is not None), key=lambda item: item[0], reverse=True):
        yield path.name, LocalDirCheckpoint(path)


def sibling_checkpoints(latest: Any, newer_first: bool = False) -> Iterator[tuple[str, Any]]:
    """Ray's latest checkpoint, then the other checkpoints of the same run, newest (epoch, step) first.

    The older ones are the fallback when the latest is damaged. ``newer_first``: folders of this run
    further on than Ray's latest come before it. Ray registers a checkpoint only at its controller's next
    poll of the workers (``health_check_interval_s``) after the upload completed, and step checkpoints
    reported while the controller is behind are stored but never registered (``report_step_checkpoint``),
    so a worker killed leaves complete checkpoints Ray does not name; loading checks that one is complete
    (``meta.json``, digest, every rank's RNG file), and the driver's tidy at the start of a run removes
    such folders, so only restarts inside one run resume from them.
    """
    if latest is None:
        return
    from ray.train import Checkpoint

    latest_name = posixpath.basename(latest.path.rstrip("/"))
    parent = posixpath.dirname(latest.path.rstrip("/"))
    others = [(progress, name) for progress, name in _checkpoint_folders(latest.filesystem, parent)
              if name != latest_name]
    latest_progress = progress_of(latest_name)
    newer = [name for progress, name in others if newer_first and latest_progress and progress > latest_progress]
    for name in newer:
        yield name, Checkpoint(path=posixpath.join(parent, name), filesystem=latest.filesystem)
    yield latest_name, latest
    for _, name in others:
        if name not in newer:
            yield name, Checkpoint(path=posixpath.join(parent, name), filesystem=latest.filesystem)


def stored_checkpoints(filesystem: Any, run_folder: str) -> Iterator[tuple[str, Any]]:
    """The checkpoint folders under ``run_folder``, newest (epoch, step) first: when Ray names none."""
    from ray.train import Checkpoint

    for _, name in _checkpoint_folders(filesystem, run_folder):
        yield name, Checkpoint(path=posixpath.join(run_folder, name), filesystem=filesystem)


def _checkpoint_folders(filesystem: Any, parent: str) -> list[tuple[Any, str]]:
    from pyarrow import fs as pafs

    # Recursive: GCS has no real folders, and a non-recursive listing on it can come back empty.
    infos = filesystem.get_file_info(pafs.FileSelector(parent, allow_not_found=True, recursive=True))
    names = {posixpath.relpath(info.path, parent).split("/")[0] for info in infos}
    return sorted(((progress_of(name), name) for name in names if progress_of(name) is not None), reverse=True)
