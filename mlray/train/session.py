"""Where the training loop runs: a Ray Train worker, a Ray Tune trial, or a plain process.

The loop only sees this small interface; the Ray flavours import Ray lazily so
the loop also runs where Ray is not installed (the GPU check, torchrun).
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from mlray.ray_private import set_worker_exit, train_reports_pending, worker_exit
from mlray.train.checkpoint import META_FILE, progress_of, store_checkpoint_files, write_checkpoint_files
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

    def record_step(self, step: int, loss: float) -> None:
        """Every rank, after each optimizer step (``step`` counts from 1 over the whole run)."""
        ...

    def checkpoint_candidates(self) -> Iterator[tuple[str, Any]]:
        """``(name, checkpoint)`` newest first; checkpoints have ``as_directory()``."""
        ...

    def preemption_notice(self) -> bool:
        """Collective: True once the platform says a node of this run is going away."""
        ...

    def stop_requested(self) -> bool:
        """Local: True once this process was asked to stop (driver SIGTERM)."""
        ...

    def after_stop(self) -> None:
        """Called once the stop checkpoint is reported; may raise to have the run restarted."""
        ...


class ForwardingSession:
    """Base for ``run_training(wrap_session=...)`` wrappers: everything not overridden goes to ``inner``.

    Override what the wrapper changes, typically ``report`` (calling ``self.inner.report``).
    """

    def __init__(self, inner: Session):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # rank, world_size, device and the methods not overridden
        return getattr(self.inner, name)


@dataclass
class StepLog:
    """A ``run_training(wrap_session=...)``: rank 0 appends ``<step> <loss> <unix time>`` to ``path`` after
    every optimizer step, and a ``start <pid> <world size>`` line each time the workers start (first run, restart, resume).

    What step-exact resume is checked against (tests) and steps lost are counted from (bench.chaos).
    """

    path: str

    def __call__(self, session: Session) -> Session:
        return StepLoggingSession(session, Path(self.path)) if session.rank == 0 else session


class StepLoggingSession(ForwardingSession):
    def __init__(self, inner: Session, path: Path):
        super().__init__(inner)
        self._file = path.open("a", buffering=1)  # line-buffered: a killed worker leaves whole lines
        self._file.write(f"start {os.getpid()} {inner.world_size}\n")

    def record_step(self, step: int, loss: float) -> None:
        self.inner.record_step(step, loss)
        self._file.write(f"{step} {loss!r} {time.time():.6f}\n")


def read_step_log(path: Path) -> list[list[tuple[int, float, float]]]:
    """A ``StepLog`` file: per start of the workers that took any step, its ``(step, loss, time)`` rows."""
    parts: list[list[tuple[int, float, float]]] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("start"):
            parts.append([])
        elif parts:
            step, loss, at = line.split()
            parts[-1].append((int(step), float(loss), float(at)))
    return [part for part in parts if part]


def step_log_starts(path: Path) -> list[tuple[int, int, int | None]]:
    """Each start of the workers in a ``StepLog`` file: (rank 0's pid, world size, its first step or None)."""
    starts: list[tuple[int, int, int | None]] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("start"):
            _, pid, world = line.split()
            starts.append((int(pid), int(world), None))
        elif starts and starts[-1][2] is None:
            starts[-1] = (*starts[-1][:2], int(line.split()[0]))
    return starts


def step_log_pid(path: Path) -> int | None:
    """The process id of rank 0's latest start, from a ``StepLog`` file."""
    starts = step_log_starts(path)
    return starts[-1][0] if starts else None


@dataclass
class LocalDirCheckpoint:
    path: Path

    @contextmanager
    def as_directory(self) -> Iterator[str]:
        yield str(self.path)


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

    def record_step(self, step: int, loss: float) -> None:
        return None

    def checkpoint_candidates(self) -> Iterator[tuple[str, Any]]:
        if not self.checkpoint_root.is_dir():
            return
        named = [(progress_of(p.name), p) for p in self.checkpoint_root.iterdir() if p.is_dir()]
        for _, path in sorted(((e, p) for e, p in named if e is not None), key=lambda item: item[0], reverse=True):
            yield path.name, LocalDirCheckpoint(path)

    def preemption_notice(self) -> bool:
        return False

    def stop_requested(self) -> bool:
        return self.stop_event.is_set()

    def after_stop(self) -> None:
        return None


class DriverStopWatcher:
    """Waits on the driver's RunControl actor in the background, so the loop only reads a flag.

    One pending ``wait_for_stop`` call per worker, not a poll: a poll every fraction
    of a second costs the training processes CPU and GIL time on every step.
    """

    def __init__(self, control: Any):
        self._control = control
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._wait, name="mlray-control-wait", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        import ray

        try:
            if ray.get(self._control.wait_for_stop.remote()):
                self._stop.set()
        except Exception as exc:  # noqa: BLE001 - a lost driver must not kill training
            log.debug("waiting for the driver's stop request ended: %s", exc)

    @property
    def requested(self) -> bool:
        return self._stop.is_set()


class WorkerPreempted(RuntimeError):
    """This worker got SIGTERM: its checkpoint is saved; Ray Train restarts the workers from it."""


def defer_worker_sigterm(flag: threading.Event, grace_period: float) -> Callable[[], None]:
    """Let SIGTERM to this worker process checkpoint before it exits.

    A Ray worker's SIGTERM handler exits the process at once. Python runs that
    handler in the main thread, which looks ``raise_sys_exit_with_custom_error_message``
    up at call time (``mlray.ray_private.worker_exit``): replacing it turns SIGTERM into
    a flag the loop sees at its next stop check. If the loop has not finished
    within ``grace_period`` the process exits as Ray would have. Returns the undo.
    """
    original = worker_exit()

    def restore() -> None:
        set_worker_exit(original)

    def exit_later(message: str, exit_code: int = 1) -> None:
        if "SIGTERM" not in str(message):
            original(message, exit_code)
            return
        log.warning("worker got SIGTERM: checkpointing, then exiting (at most %.0f s)", grace_period)
        flag.set()
        timer = threading.Timer(grace_period, os._exit, args=(exit_code,))
        timer.daemon = True
        timer.start()

    set_worker_exit(exit_later)
    return restore


class RayTrainSession:
    """A Ray Train V2 worker: reports and checkpoints through ``ray.train``."""

    def __init__(self, control: Any | None, watch_preemption: bool, grace_period: float, remote_storage: bool):
        import ray.train
        import ray.train.torch

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

    def record_step(self, step: int, loss: float) -> None:
        return None

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
        if not self._watch_preemption:
            return False
        import ray.train

        return ray.train.get_preemption_info() is not None

    def stop_requested(self) -> bool:
        return self._sigterm.is_set() or (self._driver_stop is not None and self._driver_stop.requested)

    def after_stop(self) -> None:
        if self._sigterm.is_set():
            raise WorkerPreempted(f"rank {self.rank} got SIGTERM; its checkpoint is saved")


class StepCheckpointWriter:
    """Rank 0's thread that serializes and stores step checkpoints while training goes on, one at a time.

    Each stored checkpoint that was not registered is deleted once the next one is stored: Ray never
    knows it, so nothing else would before the run's end (``tidy_run_storage``).
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None
        self._unregistered: str | None = None  # the newest stored checkpoint Ray does not know

    def store(self, files: Callable[[], dict[str, bytes]], filesystem: Any, destination: str,
              registered: bool) -> Future[None]:
        # One in flight: a write slower than the interval holds training here rather than piling up copies.
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlray-step-checkpoint")
        superseded, self._unregistered = self._unregistered, None if registered else destination
        self._last = self._pool.submit(self._write, files, filesystem, destination, superseded)
        return self._last

    @staticmethod
    def _write(files: Callable[[], dict[str, bytes]], filesystem: Any, destination: str,
               superseded: str | None) -> None:
        store_checkpoint_files(filesystem, destination, files())
        if superseded is not None:
            filesystem.delete_dir(superseded)

    def wait(self) -> None:
        """Until the last write is done; raises its error here, on the training thread."""
        if self._last is not None:
            self._last.result()


def once_stored(stored: Future[None], checkpoint: Any, dir_name: str) -> Any:
    """Ray Train's ``checkpoint_upload_fn`` for a step checkpoint the session's writer stores itself."""
    stored.result()
    return checkpoint


def upload_with_fsspec(checkpoint: Any, dir_name: str) -> Any:
    """Ray Train's ``checkpoint_upload_fn`` for gs://: gcsfs writes about 2.5x faster than pyarrow's copy.

    Files go one by one into the shared folder (ranks merge theirs there), with
    ``meta.json`` last, so an interrupted upload leaves a checkpoint that reads as incomplete.
    """
    import ray.train

    from mlray.storage.filesystem import gcs_fsspec

    storage = ray.train.get_context().get_storage()
    destination = storage.build_checkpoint_path_from_name(dir_name)
    copy_checkpoint_files(Path(checkpoint.path), gcs_fsspec(), destination)
    return ray.train.Checkpoint(path=destination, filesystem=storage.storage_filesystem)


def copy_checkpoint_files(local: Path, fs: Any, destination: str) -> None:
    """The data files side by side (fsspec uploads a list concurrently), then ``meta.json`` alone."""
    data = sorted(path for path in local.iterdir() if path.name != META_FILE)
    if data:
        fs.put([str(path) for path in data], [f"{destination}/{path.name}" for path in data])
    meta = local / META_FILE
    if meta.exists():  # only rank 0 writes one
        fs.put_file(str(meta), f"{destination}/{META_FILE}")


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

    def record_step(self, step: int, loss: float) -> None:
        return None

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
