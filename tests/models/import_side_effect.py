"""A module that announces being imported: a bundle naming it proves whether a refused factory was imported.

Importing it creates the file named by ``MLRAY_TEST_IMPORT_MARKER`` (when set).
"""

import os
from pathlib import Path

if os.environ.get("MLRAY_TEST_IMPORT_MARKER"):
    Path(os.environ["MLRAY_TEST_IMPORT_MARKER"]).touch()


def build(**kwargs):
    raise AssertionError("never called: the allowlist refuses this factory")
