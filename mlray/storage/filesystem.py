"""One way to read and write artifacts at a local path or a ``gs://`` URI.

``Storage`` gives both an fsspec filesystem (for pandas, matplotlib, our own
reads and writes) and a ``pyarrow.fs.FileSystem`` (Ray Train's
``RunConfig(storage_filesystem=...)`` and Ray Data take one).

Against a local GCS API server (``gcp-storage-emulator``), set
``STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT``; nothing else changes.

Writes are atomic: bytes go to a hidden temporary name beside the target and
are published with one rename (local) or one server-side copy (GCS) only once
they are complete, so a failed or killed upload never replaces the last good
object.
"""

from __future__ import annotations

import os
import posixpath
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlparse

import fsspec
import pyarrow.fs as pafs

from mlray.process_env import PLATFORM_ENV, apply

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
TEMP_PREFIX = ".tmp-"


def emulator_host() -> str | None:
    """``http://host:port`` of the GCS emulator in use, or None for real GCS."""
    host = os.environ.get(EMULATOR_ENV)
    if not host:
        return None
    return host if "://" in host else f"http://{host}"


# gcsfs reads this when it is imported (mlray.process_env says why it is off).
GCSFS_ENV = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": PLATFORM_ENV["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"]}


def gcs_fsspec() -> fsspec.AbstractFileSystem:
    # Jobs, init_ray and the Makefile have set it already; this covers a process that starts none of them.
    apply(GCSFS_ENV)
    import gcsfs

    host = emulator_host()
    if host:
        return gcsfs.GCSFileSystem(endpoint_url=host, token="anon")
    # Real GCS: application default credentials (Workload Identity on GKE).
    return gcsfs.GCSFileSystem()


def gcs_pyarrow() -> pafs.FileSystem:
    host = emulator_host()
    if host:
        parsed = urlparse(host)
        # FileSystem.from_uri("gs://...") would hang looking for credentials.
        return pafs.GcsFileSystem(anonymous=True, scheme=parsed.scheme, endpoint_override=parsed.netloc)
    return pafs.GcsFileSystem()


@dataclass
class Storage:
    """Artifacts under one root: ``runs/storage`` or ``gs://bucket/prefix``."""

    uri: str
    scheme: str = field(init=False)
    root: str = field(init=False)

    def __post_init__(self) -> None:
        parsed = urlparse(self.uri)
        if parsed.scheme == "gs":
            if not parsed.netloc:
                raise ValueError(f"storage uri {self.uri!r}: expected gs://bucket[/prefix]")
            self.scheme = "gs"
            self.root = posixpath.join(parsed.netloc, parsed.path.strip("/")).rstrip("/")
        elif parsed.scheme in ("", "file"):
            self.scheme = "file"
            path = parsed.path if parsed.scheme == "file" else self.uri
            self.root = os.path.abspath(os.path.expanduser(path))
        else:
            raise ValueError(f"storage uri {self.uri!r}: expected a local path or gs://bucket/prefix")
        self._fs: fsspec.AbstractFileSystem | None = None
        self._pyarrow_fs: pafs.FileSystem | None = None

    # -- filesystems ---------------------------------------------------------------
    @property
    def is_remote(self) -> bool:
        return self.scheme != "file"

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            self._fs = gcs_fsspec() if self.is_remote else fsspec.filesystem("file", auto_mkdir=True)
        return self._fs

    @property
    def pyarrow_fs(self) -> pafs.FileSystem:
        if self._pyarrow_fs is None:
            self._pyarrow_fs = gcs_pyarrow() if self.is_remote else pafs.LocalFileSystem()
        return self._pyarrow_fs

    def path(self, *parts: str) -> str:
        """Path under the root as both filesystems name it (no scheme)."""
        return posixpath.join(self.root, *parts) if parts else self.root

    def url(self, *parts: str) -> str:
        """Full URI of a path under the root, for logs and for other tools."""
        return f"gs://{self.path(*parts)}" if self.is_remote else self.path(*parts)

    def child(self, *parts: str) -> Storage:
        return Storage(self.url(*parts))

    def contains(self, uri: str) -> bool:
        """Whether ``uri`` (local path or ``gs://``) is this root or lies under it.

        Local paths are compared after resolving symlinks and ``..``; a ``gs://``
        name with a ``..`` segment is never inside (GCS keeps ``..`` literally,
        other tools may not).
        """
        other = Storage(uri)
        if other.scheme != self.scheme:
            return False
        if self.is_remote:
            if ".." in other.root.split("/"):
                return False
            mine, theirs = self.root, other.root
        else:
            mine, theirs = os.path.realpath(self.root), os.path.realpath(other.root)
        return theirs == mine or theirs.startswith(mine.rstrip("/") + "/")

    def __getstate__(self) -> dict[str, Any]:
        # Filesystem handles hold sessions and locks; rebuild them after pickling (Ray).
        return {"uri": self.uri}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.uri = state["uri"]
        self.__post_init__()

    # -- reads ---------------------------------------------------------------------
    def exists(self, relpath: str) -> bool:
        return self.fs.exists(self.path(relpath))

    def read_bytes(self, relpath: str) -> bytes:
        with self.fs.open(self.path(relpath), "rb") as handle:
            return handle.read()

    def read_text(self, relpath: str) -> str:
        return self.read_bytes(relpath).decode()

    def list(self, relpath: str = "") -> list[str]:
        """Names directly under ``relpath``, without unfinished uploads, sorted."""
        target = self.path(relpath) if relpath else self.root
        if not self.fs.exists(target):
            return []
        self.fs.invalidate_cache(target)
        names = (posixpath.basename(p.rstrip("/")) for p in self.fs.ls(target, detail=False))
        return sorted(n for n in names if n and not n.startswith(TEMP_PREFIX))

    # -- writes --------------------------------------------------------------------
    @contextmanager
    def open_atomic(self, relpath: str) -> Iterator[IO[bytes]]:
        """Write a file that appears at ``relpath`` only if the block completes."""
        final = self.path(relpath)
        directory, name = posixpath.split(final)
        temp = posixpath.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}-{name}")
        if not self.is_remote:
            os.makedirs(directory, exist_ok=True)
        try:
            with self.fs.open(temp, "wb") as handle:
                yield handle
                if not self.is_remote:
                    handle.flush()
                    os.fsync(handle.fileno())
            self._publish(temp, final)
        except BaseException:
            self._discard(temp)
            raise

    def write_bytes(self, relpath: str, data: bytes) -> str:
        return self.write_chunks(relpath, [data])

    def write_text(self, relpath: str, text: str) -> str:
        return self.write_bytes(relpath, text.encode())

    def write_chunks(self, relpath: str, chunks: Iterable[bytes]) -> str:
        """Stream chunks into ``relpath`` atomically; returns its URI."""
        with self.open_atomic(relpath) as handle:
            for chunk in chunks:
                handle.write(chunk)
        return self.url(relpath)

    def upload_file(self, local_path: str, relpath: str) -> str:
        with open(local_path, "rb") as source, self.open_atomic(relpath) as handle:
            while chunk := source.read(8 << 20):
                handle.write(chunk)
        return self.url(relpath)

    def delete(self, relpath: str) -> None:
        target = self.path(relpath)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def sweep_temporaries(self, max_age_s: float, now: float | None = None) -> list[str]:
        """Remove ``.tmp-*`` objects under the root last written more than ``max_age_s`` before ``now``.

        They are what killed uploads leave behind. An upload in progress stays
        younger than any sensible age: a local temporary file changes with every
        write, and GCS shows an object only once its upload has completed.
        Returns the URIs removed.
        """
        if not self.fs.exists(self.root):
            return []
        self.fs.invalidate_cache(self.root)
        cutoff = (time.time() if now is None else now) - max_age_s
        removed: list[str] = []
        for path in self.fs.find(self.root):
            if not posixpath.basename(path).startswith(TEMP_PREFIX):
                continue
            try:
                if self.fs.modified(path).timestamp() >= cutoff:
                    continue
                self.fs.rm(path)
            except FileNotFoundError:  # published or discarded meanwhile by its writer
                continue
            removed.append(f"gs://{path}" if self.is_remote else path)
        return removed

    def _publish(self, temp: str, final: str) -> None:
        if self.is_remote:
            # GCS has no rename: a server-side copy makes the new generation visible
            # in one step, then the temporary object goes.
            self.fs.copy(temp, final)
            self.fs.rm(temp)
            self.fs.invalidate_cache(posixpath.dirname(final))
        else:
            os.replace(temp, final)

    def _discard(self, temp: str) -> None:
        try:
            if self.fs.exists(temp):
                self.fs.rm(temp)
        except (OSError, FileNotFoundError):
            pass
