"""``ray job submit`` from a test, against the session's Ray cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlray.cluster.local import client_env, interpreter_first_on_path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NO_AGENT = "No available agent to submit job"


def submit(dashboard_url: str, *entrypoint: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``ray job submit --working-dir <project> -- ENTRYPOINT``, waiting for its output.

    Retried while the just-started cluster's job agent is not up yet. ``ray.init`` cannot
    move the dashboard agent off its fixed port 52365; when another Ray instance on the
    machine holds it, the agent serves no HTTP and no job can be submitted: that is
    skipped with the reason, not reported as this code's failure.
    """
    command = [
        str(Path(sys.executable).with_name("ray")), "job", "submit",
        "--address", dashboard_url, "--working-dir", str(PROJECT_ROOT), "--", *entrypoint,
    ]  # fmt: skip
    return retried(lambda: subprocess.run(command, capture_output=True, text=True, env=client_env(),
                                          timeout=timeout))  # fmt: skip


def submit_as_documented(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A documented shell line (``ray job submit ... -- python -m jobs.X ...``) run in ``cwd`` by ``sh``,
    as a user with the venv activated and ``RAY_AUTH_MODE=token`` exported runs it."""
    env = interpreter_first_on_path(client_env())
    return retried(lambda: subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, text=True,
                                          env=env, timeout=timeout))  # fmt: skip


def retried(run: Callable[[], subprocess.CompletedProcess[str]]) -> subprocess.CompletedProcess[str]:
    """``run()``, again while the just-started cluster's job agent is not up."""
    deadline = time.monotonic() + 30
    while True:
        result = run()
        if NO_AGENT in result.stderr:
            if time.monotonic() > deadline:
                pytest.skip(f"{NO_AGENT}: the dashboard agent's port 52365 is taken by another Ray instance here")
            time.sleep(1)  # poll interval while the agent starts
        else:
            return result


def job_summary(output: str, job: str) -> dict[str, Any]:
    """The job's JSON summary line (its last line of stdout; Ray may print more after it)."""
    lines = [line for line in output.splitlines() if line.startswith("{") and f'"job": "{job}"' in line]
    assert lines, output[-3000:]
    return json.loads(lines[-1])
