"""Storage against a real GCS emulator and a local path: same calls, same results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from mlray.storage import Storage

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "gcs"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return Storage(str(tmp_path / "store"))
    return Storage(request.getfixturevalue("gcs_uri"))


def test_round_trip_and_listing(storage):
    storage.write_bytes("a/one.bin", b"\x00\x01" * 1000)
    storage.write_text("a/two.txt", "hello")
    storage.write_text("b.txt", "top")
    assert storage.read_bytes("a/one.bin") == b"\x00\x01" * 1000
    assert storage.read_text("a/two.txt") == "hello"
    assert storage.list("a") == ["one.bin", "two.txt"]
    assert storage.list() == ["a", "b.txt"]
    assert storage.list("missing") == []
    assert storage.exists("b.txt") and not storage.exists("c.txt")
    storage.delete("a")
    assert storage.list() == ["b.txt"]


def test_replace_is_atomic_and_failed_write_keeps_previous(storage):
    storage.write_text("model.pt", "v1")
    with pytest.raises(RuntimeError, match="boom"):
        with storage.open_atomic("model.pt") as handle:
            handle.write(b"v2-partial")
            raise RuntimeError("boom")
    assert storage.read_text("model.pt") == "v1"
    assert storage.list() == ["model.pt"]  # no temporary left visible
    storage.write_text("model.pt", "v2")
    assert storage.read_text("model.pt") == "v2"


def test_upload_killed_half_way_leaves_previous_object(storage):
    """A writer process SIGKILLed mid-upload: the old object stays, whole."""
    previous = b"good" * 1024
    storage.write_bytes("ckpt/state.bin", previous)
    writer = textwrap.dedent(
        f"""
        import sys
        from mlray.storage import Storage
        storage = Storage({storage.uri!r})

        def chunks():
            for _ in range(4):
                yield b"x" * (1 << 20)
            print("half-way", flush=True)
            sys.stdin.readline()  # wait here until killed
            yield b"never"

        storage.write_chunks("ckpt/state.bin", chunks())
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", writer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "half-way"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert storage.read_bytes("ckpt/state.bin") == previous
    assert storage.list("ckpt") == ["state.bin"]


def test_pyarrow_filesystem_sees_the_same_objects(storage):
    storage.write_text("shared/x.txt", "via fsspec")
    with storage.pyarrow_fs.open_input_stream(storage.path("shared/x.txt")) as stream:
        assert stream.read() == b"via fsspec"
    with storage.pyarrow_fs.open_output_stream(storage.path("shared/y.txt")) as stream:
        stream.write(b"via pyarrow")
    storage.fs.invalidate_cache()
    assert storage.read_text("shared/y.txt") == "via pyarrow"
    info = storage.pyarrow_fs.get_file_info(storage.path("shared/x.txt"))
    assert info.type == pafs.FileType.File


def test_urls_and_children(gcs_uri, tmp_path):
    remote = Storage(gcs_uri)
    assert remote.is_remote and remote.url("a", "b") == f"{gcs_uri}/a/b"
    assert remote.child("sub").url() == f"{gcs_uri}/sub"
    local = Storage(str(tmp_path))
    assert not local.is_remote and local.url("a") == str(tmp_path / "a")


@pytest.mark.parametrize("uri", ["s3://bucket/x", "gs://", "http://host/x"])
def test_unsupported_uris_are_rejected(uri):
    with pytest.raises(ValueError, match="storage uri"):
        Storage(uri)


def test_storage_pickles_without_live_handles(gcs_uri):
    import pickle

    storage = Storage(gcs_uri)
    storage.write_text("p.txt", "1")
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.read_text("p.txt") == "1"


def test_importing_storage_leaves_the_environment_untouched():
    """Nothing writes os.environ at import time: gcsfs's setting is applied where a gcsfs filesystem is
    made (and by mlray.process_env when a job starts), not when mlray.storage is imported."""
    script = textwrap.dedent(
        """
        import json, os, sys
        before = dict(os.environ)
        import mlray.storage.filesystem, mlray.storage.emulator, mlray.storage
        names = {*before, *os.environ}
        print(json.dumps({"changed": sorted(k for k in names if before.get(k) != os.environ.get(k))}))
        """
    )
    clean = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    result = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True, text=True,
                            timeout=120, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert '"changed": []' in result.stdout.splitlines()[-1], result.stdout
