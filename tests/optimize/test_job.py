"""``python -m jobs.optimize``: through ``ray job submit`` end to end, and bad input before work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.job_submit import job_summary, submit

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ray_job_submit_solves_ft06_and_prints_a_json_summary(ray_cluster, instance, tmp_path):
    path = instance("jsp/ft06")
    result = submit(
        ray_cluster.dashboard_url,
        sys.executable, "-m", "jobs.optimize", "--config", "configs/optimize.yaml",
        "--set", f"problem.path={path}", "--set", "solver.time_limit=20",
        "--set", f"storage.uri={tmp_path / 'storage'}", "--set", f"output.dir={tmp_path / 'out'}",
        "--set", "mlflow.enabled=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = job_summary(result.stdout, "optimize")
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
            "configs/optimize.yaml",
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
    summary = job_summary(result.stdout, "optimize")
    assert summary["status"] == "failed" and str(bad) in summary["error"]
    assert "Started a local Ray instance" not in result.stderr
