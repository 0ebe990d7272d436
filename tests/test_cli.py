"""The ``mlray`` command ([project.scripts]): each subcommand runs an existing entrypoint as it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("train", "tune", "optimize", "preprocess", "materialize", "batch-predict", "demo", "cluster",
               "k8s")


def mlray_command() -> list[str]:
    """The installed console script (``pip install -e .`` writes it beside this interpreter)."""
    script = Path(sys.executable).parent / "mlray"
    assert script.is_file(), f"{script} missing: run .venv/bin/python -m pip install --no-deps -e ."
    return [str(script)]


def mlray(*args: str, env: dict[str, str] | None = None, timeout: float = 120
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mlray_command(), *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_help_lists_every_subcommand():
    result = mlray("--help")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("args", [("nonsense",), ()])
def test_an_unknown_or_missing_subcommand_exits_2_with_usage(args):
    result = mlray(*args)
    assert result.returncode == 2
    assert "usage: mlray <command>" in result.stderr
    if args:
        assert "unknown command 'nonsense'" in result.stderr
    assert result.stdout == ""


def test_a_job_subcommand_is_the_job_entrypoint_bad_config_exits_2_naming_the_field():
    result = mlray("train", "--config", "configs/train.yaml", "--set", "training.batch_size=0")
    assert result.returncode == 2
    assert "invalid --set training.batch_size=0" in result.stderr and "training.batch_size" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_job_subcommand_passes_help_through_to_the_job():
    result = mlray("optimize", "--help")
    assert result.returncode == 0
    assert "--config" in result.stdout and "--set" in result.stdout


TOOL_USAGES = {"cluster": "{up,down,status}", "k8s": "{render,validate}"}


@pytest.mark.parametrize(("command", "usage"), TOOL_USAGES.items(), ids=list(TOOL_USAGES))
def test_tool_subcommands_are_the_module_clis(command, usage):
    result = mlray(command, "--help")
    assert result.returncode == 0, result.stderr
    assert usage in result.stdout


def test_k8s_validate_checks_the_committed_manifests():
    result = mlray("k8s", "validate", "clusters/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "files: 0 problems" in result.stderr


@pytest.mark.slow
def test_optimize_solves_ft06_and_prints_the_job_summary(ray_cluster, instances_dir, tmp_path):
    from mlray.cluster.local import client_env

    env = {**client_env(), "RAY_ADDRESS": ray_cluster.gcs_address}
    result = mlray(
        "optimize", "--config", "configs/optimize.yaml",
        "--set", f"problem.path={instances_dir / 'jsp' / 'ft06'}", "--set", "solver.time_limit=2",
        "--set", f"storage.uri={tmp_path / 'storage'}", "--set", f"output.dir={tmp_path / 'out'}",
        "--set", "output.plots=false", "--set", "mlflow.enabled=false",
        env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["job"] == "optimize" and summary["feasible"] is True
    assert summary["objective"] >= 55  # ft06's optimum: a feasible schedule is never shorter
