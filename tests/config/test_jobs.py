"""The jobs table: a job registered with one line is a subcommand of ``mlray`` and ``python -m jobs``, gets
a RayJob from the renderer and a section in the configuration reference, with no other edit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlray.config import reference
from mlray.config.jobs import JOBS, Job, job_named, register, unregister
from mlray.kuberay.render import RenderInputs, render

from .toy_job import ToyJobConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy_job() -> Iterator[Job]:
    job = register(Job("toy", "toy.yaml", ToyJobConfig, "tests.config.toy_job:main"))  # the one line
    yield job
    unregister("toy")


def summary_of(run, capsys) -> dict:
    with pytest.raises(SystemExit) as ended:
        run()
    assert ended.value.code == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_registered_job_runs_from_both_commands(toy_job, tmp_path, capsys):
    from jobs.__main__ import main as image_entrypoint
    from mlray.cli import main as mlray_command

    config = tmp_path / "toy.yaml"
    config.write_text("word: hi\n")
    by_cli = summary_of(lambda: mlray_command(["toy", "--config", str(config), "--set", "times=3"]), capsys)
    assert by_cli["job"] == "toy" and by_cli["said"] == ["hi"] * 3
    by_image = summary_of(lambda: image_entrypoint(["toy", "--config", str(config)]), capsys)
    assert by_image["said"] == ["hi"] * 2


def test_a_registered_job_gets_a_rayjob_and_a_reference_section(toy_job):
    files = render(RenderInputs.from_project(PROJECT_ROOT))
    (rayjob,) = [doc for doc in yaml.safe_load_all(files["rayjob-toy.yaml"]) if doc]
    assert rayjob["kind"] == "RayJob"
    assert rayjob["spec"]["entrypoint"].startswith("python -m jobs toy --config configs/toy.yaml")
    assert "#### `configs/toy.yaml` (ToyJobConfig" in reference.render()
    assert "`times`" in reference.render()


def test_jobs_are_found_by_either_spelling_and_unknown_ones_are_named():
    assert job_named("batch_predict") is job_named("batch-predict") is JOBS["batch-predict"]
    with pytest.raises(KeyError, match="no job 'nope'"):
        job_named("nope")
