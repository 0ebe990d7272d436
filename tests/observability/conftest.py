"""Prometheus's own tools for the observability tests: from Debian's ``prometheus`` package."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL = "apt-get install -y --no-install-recommends prometheus"


def prometheus_tool(name: str) -> Path:
    """``promtool`` or ``prometheus``: installed here when missing and this process is root (as in CI),
    else the test is skipped with the command that installs it."""
    found = shutil.which(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(INSTALL.split(), check=False, capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: run `sudo {INSTALL}` (Debian's prometheus package)")
    return Path(found)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return prometheus_tool("promtool")
