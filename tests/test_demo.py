"""``make demo`` end to end: the summary holds up and nothing is left running."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def demo_processes() -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listing if "mlray-demo-ray-" in line]


@pytest.mark.slow
def test_demo_runs_end_to_end_and_cleans_up(shared_dir):
    result = subprocess.run(
        [sys.executable, "-m", "jobs.demo", "--config", "configs/demo.yaml", "--set", "num_queries=300"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "ok"
    assert summary["train"]["model_uri"].startswith("gs://mlray-demo/")
    # a classifier that learned beats the majority-class baseline of this data (~0.55)
    assert summary["train"]["metrics"]["val_accuracy"] > 0.65
    assert summary["jobshop"]["feasible"] and summary["routing"]["feasible"]
    assert summary["serve"]["answered"] == 300 and summary["serve"]["failed"] == 0
    assert abs(summary["serve"]["canary_share"] - 0.2) <= 0.07
    # ray.shutdown() has returned; give exiting processes a bounded moment to be reaped
    deadline = time.monotonic() + 30
    while demo_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert demo_processes() == []
