"""``make demo``: every step runs, the dashboard it prints answers, the summary holds up, nothing is left running."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from mlray.config.demo import DemoConfig
from mlray.optimize.instances import INSTANCES_ROOT
from tests.waiting import wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUERIES = 1000
ALL_STEPS = ["preprocess", "features", "train", "solve", "serve", "query", "batch inference"]


def processes_matching(text: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listing if text in line]


def run_demo_watching_dashboard(
    tmp_path: Path, *overrides: str, timeout: float = 900
) -> tuple[int, list[str], list[int], str]:
    """Run ``jobs.demo``; GET the dashboard URL the moment the demo prints it, while the demo still runs.

    Returns the exit status, the stdout lines, the dashboard's answers and stderr.
    """
    stderr_path = tmp_path / "demo.stderr"
    settings = [arg for override in overrides for arg in ("--set", override)]
    with stderr_path.open("w") as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "jobs.demo", "--config", "configs/demo.yaml", *settings],
            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
        deadline = threading.Timer(timeout, demo.kill)
        deadline.start()
        lines, answers = [], []
        try:
            for line in demo.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("Ray dashboard: "):
                    answers.append(httpx.get(line.split()[2], timeout=30).status_code)
            returncode = demo.wait()
        finally:
            deadline.cancel()
            if demo.poll() is None:
                demo.kill()
    return returncode, lines, answers, stderr_path.read_text()


def assert_services_stopped(summary: dict) -> None:
    # ray.shutdown() and the emulator's stop have returned; exiting processes get a bounded moment to be reaped
    emulator_port = f"--port {summary['gcs_emulator'].rsplit(':', 1)[1]}"
    wait_for(lambda: not processes_matching("mlray-demo-ray-") and not processes_matching(emulator_port), 30,
             "the demo's Ray and emulator processes to exit")  # fmt: skip


@pytest.mark.slow
def test_demo_runs_every_step_end_to_end_and_cleans_up(tmp_path):
    returncode, lines, dashboard_answers, stderr = run_demo_watching_dashboard(tmp_path, f"num_queries={QUERIES}")
    output = "\n".join(lines)
    assert returncode == 0, output[-3000:] + stderr[-3000:]
    summary = json.loads(lines[-1])
    assert summary["status"] == "ok"

    # every step announced, finished and recorded; the dashboard answered the test while the demo said it would
    assert summary["steps_done"] == ALL_STEPS
    announced = [line.split(":", 1)[0] for line in lines if line.startswith("==> ")]
    assert announced == [f"==> {number}/{len(ALL_STEPS)} {name}" for number, name in enumerate(ALL_STEPS, 1)]
    assert [line.split(" done in ")[0].strip() for line in lines if " done in " in line] == ALL_STEPS
    assert dashboard_answers == [200] and summary["dashboard_status"] == 200
    assert f"Ray dashboard: {summary['dashboard_url']} " in output
    assert "DEMO FAILED" not in output

    # progress in a few lines, not one log line per request
    # (not a terminal: one plain line per quarter of the burst, then the closing line)
    assert sum(line.startswith("    queries: ") and f"/{QUERIES} (" in line for line in lines) == 5, output[-3000:]
    assert "HTTP Request:" not in output + stderr

    assert summary["features"]["rows"]["driver_hourly_stats"] > 0
    train = summary["train"]
    assert train["model_uri"].startswith("gs://mlray-demo/")
    assert train["metrics"]["val_accuracy"] > train["baseline_accuracy"] + 0.05, train

    for solve in ("jobshop", "routing"):
        assert summary[solve]["feasible"] is True, summary[solve]  # the independent checker's verdict
        assert summary[solve]["resumed_from"] is None, summary[solve]  # a fresh solve, not an earlier run's result

    served = summary["serve"]
    assert served["answered"] == QUERIES and served["failed"] == 0, served
    assert served["answered_by_entity_keys"] > 0
    assert served["rollout"]["status"] == "canary", served["rollout"]
    assert abs(served["canary_share"] - 0.2) <= 0.05, served

    batch = summary["batch"]
    assert batch["rows"] == batch["matches_online"]["rows"] > 0
    assert batch["matches_online"]["equal"] is True, batch["matches_online"]

    assert_services_stopped(summary)


@pytest.mark.slow
def test_a_step_that_cannot_run_fails_the_demo_and_says_which(tmp_path):
    returncode, lines, dashboard_answers, stderr = run_demo_watching_dashboard(
        tmp_path, f"preprocess_config={tmp_path / 'absent.yaml'}", timeout=300
    )
    summary = json.loads(lines[-1])
    assert returncode == 1, "\n".join(lines)[-3000:] + stderr[-3000:]
    assert summary["status"] == "failed" and summary["steps_done"] == []
    assert summary["problems"][0].startswith(f"steps not run: {', '.join(ALL_STEPS)} (stopped by ")
    assert "absent.yaml" in summary["problems"][0]
    assert "DEMO FAILED:" in lines and f"DEMO FAILED:\n  - {summary['problems'][0]}\n" in "\n".join(lines)
    assert summary["problems"][1].endswith("session_latest/logs") and Path(summary["ray_logs"]).is_dir()
    assert dashboard_answers == [200]
    assert_services_stopped(summary)


def test_an_unknown_instance_fails_before_any_work_with_the_field_named():
    result = subprocess.run(
        [sys.executable, "-m", "jobs.demo", "--config", "configs/demo.yaml", "--set", "routing_instance=cvrp/nope.vrp"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "routing_instance: " in result.stderr and "no shipped instance named 'cvrp/nope.vrp'" in result.stderr
    assert "Ray dashboard" not in result.stdout


def test_demo_config_names_shipped_instances_or_files(tmp_path):
    config = DemoConfig(routing_instance="X-n1001-k43", scheduling_instance="jsp/ta01")
    assert config.routing_instance == str(INSTANCES_ROOT / "cvrp" / "X-n1001-k43.vrp")
    assert config.scheduling_instance == str(INSTANCES_ROOT / "jsp" / "ta01")
    own = tmp_path / "own.vrp"
    own.write_text("NAME : own\n")
    assert DemoConfig(routing_instance=str(own)).routing_instance == str(own)


def test_each_demo_run_solves_afresh_and_a_reused_run_name_says_it_resumed(ray_cluster, tmp_path, monkeypatch, capsys):
    from mlray.demo.run import solve

    monkeypatch.chdir(tmp_path)  # the solver's storage and plots (runs/...) land here
    config = DemoConfig(optimize_config=str(PROJECT_ROOT / "configs" / "optimize.yaml"), solve_time_limit=2)
    first = solve(config, config.scheduling_instance, "20260101-000000")
    second = solve(config, config.scheduling_instance, "20260101-000100")
    assert first["run_name"] != second["run_name"]
    assert first["resumed_from"] is None and second["resumed_from"] is None
    capsys.readouterr()
    again = solve(config, config.scheduling_instance, "20260101-000000")  # what a rerun without a new name would do
    assert again["resumed_from"] == first["objective"]
    assert f"resumed from a checkpoint at {first['objective']}" in capsys.readouterr().out
