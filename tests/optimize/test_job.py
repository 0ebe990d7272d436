"""``python -m jobs.optimize``: through ``ray job submit`` end to end, and bad input before work."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlray.cluster.local import client_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SUBMIT_ATTEMPTS = 5


def summary_line(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("{") and '"job": "optimize"' in line]
    assert lines, output[-3000:]
    return json.loads(lines[-1])


@pytest.mark.slow
def test_ray_job_submit_solves_ft06_and_prints_a_json_summary(ray_cluster, instance, tmp_path):
    path = instance("jsp/ft06")
    command = [
        str(Path(sys.executable).parent / "ray"),
        "job",
        "submit",
        "--address",
        ray_cluster.dashboard_url,
        "--working-dir",
        str(PROJECT_ROOT),
        "--",
        sys.executable,
        "-m",
        "jobs.optimize",
        "--config",
        "configs/or_tools.yaml",
        "--set",
        f"problem.path={path}",
        "--set",
        "solver.time_limit=20",
        "--set",
        f"storage.uri={tmp_path / 'storage'}",
        "--set",
        f"output.dir={tmp_path / 'out'}",
        "--set",
        "mlflow.enabled=false",
    ]
    for _ in range(SUBMIT_ATTEMPTS):
        result = subprocess.run(
            command, check=False, capture_output=True, text=True, env=client_env(), timeout=300
        )
        if "No available agent to submit job" not in result.stderr:
            break
        time.sleep(3)  # the dashboard agent of a freshly started cluster is not up yet: ask again
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = summary_line(result.stdout)
    assert summary["status"] == "optimal" and summary["objective"] == 55 and summary["feasible"] is True
    assert "incumbent 55" in result.stdout + result.stderr  # progress lines: incumbent, bound, gap, arm
    assert Path(summary["plots"]["gantt"]).is_file()


def test_malformed_problem_file_fails_with_a_summary_before_any_solve(tmp_path):
    bad = tmp_path / "bad.vrp"
    bad.write_text("NAME : bad\nDIMENSION : 3\nCAPACITY : -\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.optimize",
            "--config",
            "configs/or_tools.yaml",
            "--set",
            f"problem.path={bad}",
        ],
        check=False,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    summary = summary_line(result.stdout)
    assert summary["status"] == "failed" and str(bad) in summary["error"]
    assert "Started a local Ray instance" not in result.stderr
