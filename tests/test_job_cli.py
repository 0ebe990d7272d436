"""Jobs refuse bad configs with status 2, one readable message and no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_job(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('training: {batch_size: "many"}', "training.batch_size"),
        ("training: {batchsize: 8}", "training.batchsize: unknown key"),
    ],
)
def test_invalid_config_exits_2_naming_the_field(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run_job("jobs.train", "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # no work started, no summary


def test_missing_config_file_exits_2(tmp_path):
    result = run_job("jobs.train", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_set_override_exits_2():
    result = run_job("jobs.train", "--config", "configs/training.yaml", "--set", "training.batch_size=0")
    assert result.returncode == 2
    assert "training.batch_size" in result.stderr


def test_summary_line_is_json(capsys):
    from mlray.entrypoint import print_summary

    print_summary({"status": "ok", "metrics": {"loss": 0.5}})
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]["loss"] == 0.5


CHATTY_JOB = """
import threading
import time

import ray

from mlray.config.base import ConfigModel
from mlray.entrypoint import run_job


class NoSettings(ConfigModel):
    pass


@ray.remote(num_cpus=0)
class Chatty:
    def start(self):
        threading.Thread(target=self.talk).start()  # keeps printing after the call has returned

    def talk(self):
        for line in range(100):
            print(f"worker line {line}", flush=True)
            time.sleep(0.02)


def main(config):
    ray.init()
    chatty = Chatty.remote()
    ray.get(chatty.start.remote())
    return {"status": "ok"}


run_job("chatty", NoSettings, main)
"""


@pytest.mark.slow
def test_the_summary_stays_last_when_the_cluster_forwards_logs(ray_cluster, tmp_path):
    """Cluster output that reaches the driver late (here an actor that keeps printing) must not follow the summary."""
    from mlray.cluster.local import client_env

    job, config = tmp_path / "chatty_job.py", tmp_path / "chatty.yaml"
    job.write_text(CHATTY_JOB)
    config.write_text("{}\n")
    env = {**client_env(), "RAY_ADDRESS": ray_cluster.gcs_address}
    result = subprocess.run([sys.executable, str(job), "--config", str(config)], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["job"] == "chatty" and summary["status"] == "ok"
