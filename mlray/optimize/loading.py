"""The optimization job's problem, wherever ``problem.path`` points.

``problem.path`` is a shipped instance by name (``"jsp/ft06"``, ``"ft06"``, ``"cvrp/E-n13-k4.vrp"``:
``mlray.optimize.instances``), else a location: a relative path lies under ``storage.uri``, an
absolute path or a ``gs://`` URI is taken as is. A ``gs://`` file is copied with the files the
readers look for beside it (a VRPLIB ``.sol``, ``scheduleopt_bks.json``, ``instances.json``: the
best-known values) into a temporary folder, read, and the folder removed.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import PurePosixPath

from mlray.config.sections import StorageConfig
from mlray.optimize import instances
from mlray.optimize.problems import Problem, ProblemError
from mlray.optimize.registry import read_problem
from mlray.storage import Storage

BESIDE_THE_PROBLEM = ("scheduleopt_bks.json", "instances.json")  # best-known catalogues the readers use


def problem_location(path: str, storage: StorageConfig) -> str:
    """Where ``problem.path`` points: a shipped instance's file, or the location under ``storage.uri``."""
    if "://" not in path and not os.path.isabs(path):
        try:
            return str(instances.path(path))
        except ValueError:
            pass  # not a shipped instance's name: a location
    return storage.location(path)


def load_problem(path: str | None, kind: str, storage: StorageConfig) -> Problem:
    """Read the problem ``problem.path`` names (see the module's docstring); ProblemError if it cannot."""
    if path is None:
        raise ProblemError("problem.path: expected a problem file or a shipped instance name, got null")
    location = problem_location(path, storage)
    if "://" not in location:
        return read_problem(location, kind)
    folder_uri, _, name = location.rstrip("/").rpartition("/")
    remote = Storage(folder_uri)
    if not name or not remote.exists(name):
        raise ProblemError(f"problem.path: file not found: {location}")
    sidecars = [PurePosixPath(name).with_suffix(".sol").name, *BESIDE_THE_PROBLEM]
    with tempfile.TemporaryDirectory(prefix="mlray-problem-") as folder:
        for file_name in [name, *sidecars]:
            if file_name == name or remote.exists(file_name):
                with open(posixpath.join(folder, file_name), "wb") as handle:
                    handle.write(remote.read_bytes(file_name))
        return read_problem(os.path.join(folder, name), kind)
