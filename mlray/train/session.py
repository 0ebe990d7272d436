"""Where the training loop runs: a Ray Train worker, a Ray Tune trial, or a plain process.

The loop only sees this small interface; the Ray flavours import Ray lazily so
the loop also runs where Ray is not installed (the GPU check, torchrun).
"""

from __future__ import annotations

import functools
import logging
import posixpath
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from mlray.ray_private import preemption_noticed_here, train_reports_pending
from mlray.train.checkpoint import (StepCheckpointWriter, local_checkpoints, once_stored, sibling_checkpoints,
                                    stored_checkpoints, upload_with_fsspec, write_checkpoint_files)
from mlray.train.distributed import broadcast_from_rank0

log = logging.getLogger(__name__)


class Session(Protocol):
    rank: int
    world_size: int
    device: torch.device

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None, dir_name: str | None) -> None:
        """Every rank, in step: the epoch's metrics, with the checkpoint in ``checkpoint_dir`` (each rank's
        files, merged under ``dir_name``) stored before this returns."""
        ...

    def can_register_now(self) -> bool:
        """Rank 0: whether a step checkpoint reported now would register without waiting behind others."""
        ...

    def report_step_checkpoint(self, metrics: dict[str, Any], dir_name: str,
                               files: Callable[[], dict[str, bytes]] | None, register: bool) -> None:
        """Every rank, in step: a checkpoint inside an epoch, stored while training goes on.

        ``files`` (rank 0 only, None elsewhere) builds the whole checkpoint, ``META_FILE`` last, on a thread
        of the session's. ``register`` (the same on every rank: rank 0's ``can_register_now``) says whether to
        register it with the trainer too, once complete; stored but unregistered, it is still what a restart
        inside the run resumes from (``checkpoint_candidates``) until a newer one supersedes it.
        """
        ...

    def checkpoint_candidates(self) -> Iterator[tuple[str, Any]]:
        """``(name, checkpoint)`` newest first; checkpoints have ``as_directory()``."""
        ...

    def preemption_notice(self) -> bool:
        """Local: True once the platform told this rank that a node of the run is going away."""
        ...

    def stop_requested(self) -> bool:
        """Local: True once this process was asked to stop (driver or worker SIGTERM, preemption notice);
        the loop agrees on it with the other ranks at its next stop check."""
        ...

    def after_stop(self) -> None:
        """Called once the stop checkpoint is reported; may raise to have the workers restarted."""
        ...


@dataclass
class LocalSession:
    """A plain process (or one torchrun rank): checkpoints are folders under ``checkpoint_root``."""

    checkpoint_root: Path
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    reports: list[dict[str, Any]] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None, dir_name: str | None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint_dir is not None and dir_name is not None:
            shutil.copytree(checkpoint_dir, self.checkpoint_root / dir_name, dirs_exist_ok=True)

    def can_register_now(self) -> bool:
        return True

    def report_step_checkpoint(self, metrics: dict[str, Any], dir_name: str,
                               files: Callable[[], dict[str, bytes]] | None, register: bool) -> None:
        self.reports.append(dict(metrics))
        if files is not None:  # a plain process has no trainer to keep pace with: stored at once
            write_checkpoint_files(self.checkpoint_root / dir_name, files())

    def checkpoint_candidates(self) -> Iterator[tuple[str, Any]]:
        return local_checkpoints(self.checkpoint_root)

    def preemption_notice(self) -> bool:
        return False

    def stop_requested(self) -> bool:
        return self.stop_event.is_set()

    def after_stop(self) -> None:
        return None


class RayTrainSession:
    """A Ray Train V2 worker: reports and checkpoints through ``ray.train``."""

    def __init__(self, control: Any | None, watch_preemption: bool, grace_period: float, remote_storage: bool):
        import ray.train
        import ray.train.torch

        from mlray.train.control import DriverStopWatcher, defer_worker_sigterm

        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self._watch_preemption = watch_preemption
        self._remote = remote_storage
        self._driver_stop = DriverStopWatcher(control) if control is not None else None
        self._sigterm = threading.Event()
        self._step_writer = StepCheckpointWriter()
        self.close = defer_worker_sigterm(self._sigterm, grace_period) if watch_preemption else lambda: None

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None, dir_name: str | None) -> None:
        import ray.train
        from ray.train.v2.api.report_config import CheckpointUploadMode

        if checkpoint_dir is None:
            # Metrics alone: Ray's controller takes one report per poll from a queue of one, so a report
            # while one is pending would hold the training thread until the next poll. Skipped then (every
            # rank alike): the next report carries newer metrics, and the last one of a run has a checkpoint.
            if broadcast_from_rank0(self.can_register_now()):
                ray.train.report(metrics, checkpoint_upload_mode=CheckpointUploadMode.ASYNC)
            return
        self._step_writer.wait()  # the step checkpoints before this one are stored (or their error raised)
        checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint_dir))
        upload = upload_with_fsspec if self._remote else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=dir_name, checkpoint_upload_fn=upload,
                         checkpoint_upload_mode=CheckpointUploadMode.SYNC)

    def can_register_now(self) -> bool:
        return not train_reports_pending()

    def report_step_checkpoint(self, metrics: dict[str, Any], dir_name: str,
                               files: Callable[[], dict[str, bytes]] | None, register: bool) -> None:
        """Rank 0's thread builds and stores the files straight into the run's storage; the report, when
        ``register``, is ASYNC: Ray's upload thread waits for that write, then registers the checkpoint
        (a failed write fails the worker; the last registered checkpoint stays the latest)."""
        import ray.train
        from ray.train.v2.api.report_config import CheckpointUploadMode

        storage = ray.train.get_context().get_storage()
        destination = storage.build_checkpoint_path_from_name(dir_name)
        stored = self._step_writer.store(files, storage.storage_filesystem, destination, register) if files else None
        if not register:
            return
        checkpoint = ray.train.Checkpoint(path=destination, filesystem=storage.storage_filesystem) if stored else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=dir_name,
                         checkpoint_upload_fn=functools.partial(once_stored, stored) if stored else None,
                         checkpoint_upload_mode=CheckpointUploadMode.ASYNC,
                         delete_local_checkpoint_after_upload=False)  # the "local" folder is the stored one

    def checkpoint_candidates(self) -> Iterator[tuple[str, Any]]:
        import ray.train

        latest = ray.train.get_checkpoint()
        if latest is None:  # step checkpoints may be stored before Ray registered any (report_step_checkpoint)
            storage = ray.train.get_context().get_storage()
            run_folder = posixpath.dirname(storage.build_checkpoint_path_from_name("any"))
            yield from stored_checkpoints(storage.storage_filesystem, run_folder)
            return
        yield from sibling_checkpoints(latest, newer_first=True)

    def preemption_notice(self) -> bool:
        return self._watch_preemption and preemption_noticed_here()

    def stop_requested(self) -> bool:
        return (self._sigterm.is_set() or self.preemption_notice()
                or (self._driver_stop is not None and self._driver_stop.requested))

    def after_stop(self) -> None:
        """A SIGTERM to this worker or a node of the run draining: the checkpoint is saved, and Ray Train
        restarts the workers from it, where there is capacity (a draining node takes no new work)."""
        from mlray.train.control import WorkerPreempted

        if self._sigterm.is_set():
            raise WorkerPreempted(f"rank {self.rank} got SIGTERM; its checkpoint is saved")
        if self.preemption_notice():
            raise WorkerPreempted(f"rank {self.rank}: a node of the run is draining; its checkpoint is saved")


class TuneSession:
    """A Ray Tune trial: one process; ASHA reads the metrics reported every epoch."""

    rank = 0
    world_size = 1

    def __init__(self, device: torch.device):
        self.device = device

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None, dir_name: str | None) -> None:
        import ray.tune

        checkpoint = ray.tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        ray.tune.report(metrics, checkpoint=checkpoint)  # Tune copies the folder before returning

    def can_register_now(self) -> bool:
        return True

    def report_step_checkpoint(self, metrics: dict[str, Any], dir_name: str,
                               files: Callable[[], dict[str, bytes]] | None, register: bool) -> None:
        with tempfile.TemporaryDirectory(prefix="mlray-ckpt-") as local:  # a trial is one process: rank 0
            write_checkpoint_files(Path(local), files() if files is not None else {})
            self.report(metrics, Path(local), dir_name)

    def checkpoint_candidates(self) -> Iterator[tuple[str, Any]]:
        import ray.tune

        latest = ray.tune.get_checkpoint()
        if latest is not None:
            yield posixpath.basename(latest.path), latest

    def preemption_notice(self) -> bool:
        return False

    def stop_requested(self) -> bool:
        return False

    def after_stop(self) -> None:
        return None
