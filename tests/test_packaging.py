"""The wheel carries the data the code reads: benchmark instances and CRDs, each with its SOURCES.md."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ("mlray/optimize/instances", "mlray/kuberay/crds")
PACKAGES = ("mlray", "jobs", "serve_apps")


def test_wheel_holds_every_instance_and_crd_file(tmp_path):
    # built from a copy: pip builds in the source folder and would leave build/ in the checkout
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", source)
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "--quiet",
         str(source), "-w", str(tmp_path / "wheel")],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("mlray-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    on_disk = {
        path.relative_to(PROJECT_ROOT).as_posix()
        for folder in PACKAGE_DATA
        for path in (PROJECT_ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert len(on_disk) > 140
    assert on_disk - packed == set()
    assert {f"{folder}/SOURCES.md" for folder in PACKAGE_DATA} <= packed
