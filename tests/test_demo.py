"""``make demo`` end to end: the summary holds up and nothing is left running."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waiting import wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUERIES = 1000


def processes_matching(text: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listing if text in line]


@pytest.mark.slow
def test_demo_runs_end_to_end_and_cleans_up(shared_dir):
    result = subprocess.run(
        [sys.executable, "-m", "jobs.demo", "--config", "configs/demo.yaml", "--set", f"num_queries={QUERIES}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "ok"

    assert summary["features"]["rows"]["driver_hourly_stats"] > 0
    train = summary["train"]
    assert train["model_uri"].startswith("gs://mlray-demo/")
    assert train["metrics"]["val_accuracy"] > train["baseline_accuracy"] + 0.05, train

    for solve in ("jobshop", "routing"):
        assert summary[solve]["feasible"] is True, summary[solve]  # the independent checker's verdict

    served = summary["serve"]
    assert served["answered"] == QUERIES and served["failed"] == 0, served
    assert served["answered_by_entity_keys"] > 0
    assert served["rollout"]["status"] == "canary", served["rollout"]
    assert abs(served["canary_share"] - 0.2) <= 0.05, served

    batch = summary["batch"]
    assert batch["rows"] == batch["matches_online"]["rows"] > 0
    assert batch["matches_online"]["equal"] is True, batch["matches_online"]

    # ray.shutdown() and the emulator's stop have returned; exiting processes get a bounded moment to be reaped
    emulator_port = f"--port {summary['gcs_emulator'].rsplit(':', 1)[1]}"
    wait_for(lambda: not processes_matching("mlray-demo-ray-") and not processes_matching(emulator_port), 30,
             "the demo's Ray and emulator processes to exit")  # fmt: skip
