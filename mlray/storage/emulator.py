"""A local GCS API server (``gcp-storage-emulator``) for tests and the demo.

Real GCS code paths (gcsfs, pyarrow's GcsFileSystem, Ray Train checkpoints)
talk to it through ``STORAGE_EMULATOR_HOST``; nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mlray.process_env import apply
from mlray.storage.filesystem import EMULATOR_ENV, GCSFS_ENV

READY_TIMEOUT_S = 30.0


_HANDED_OUT_PORTS: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now and not returned before by this process.

    Callers pick several ports before anything binds them (``ray start`` takes six); the kernel
    may offer the same free port twice in a row, and Ray then refuses to start (seen in CI).
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT_PORTS:
            _HANDED_OUT_PORTS.add(port)
            return port


def emulator_executable() -> str:
    beside = Path(sys.executable).with_name("gcp-storage-emulator")
    found = str(beside) if beside.exists() else shutil.which("gcp-storage-emulator")
    if not found:
        raise RuntimeError("gcp-storage-emulator is not installed: pip install -e '.[dev]'")
    return found


@dataclass
class GcsEmulator:
    """One in-memory emulator process on a free loopback port."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> GcsEmulator:
        self.process = subprocess.Popen(
            [emulator_executable(), "start", "--host", self.host, "--port", str(self.port), "--in-memory"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b?project=test", timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # poll interval while the server binds its port
        raise TimeoutError(f"gcp-storage-emulator did not answer on {self.url} in {READY_TIMEOUT_S} s")

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test",
            data=f'{{"name": "{name}"}}'.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already exists
                raise

    def export_env(self) -> None:
        """Point this process (and Ray workers started after it) at the emulator."""
        os.environ[EMULATOR_ENV] = self.url
        apply(GCSFS_ENV)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> GcsEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
