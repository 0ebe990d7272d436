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
