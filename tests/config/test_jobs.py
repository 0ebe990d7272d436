"""The jobs table: a job registered with one line is a subcommand of ``mlray`` and ``python -m jobs``, gets
a RayJob from the renderer and a section in the configuration reference, with no other edit."""

from __future__ import annotations

import json
import subprocess
import sys
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


# In a process of its own: a job's end disconnects Ray (``run_job``), which must not touch this
# session's cluster.
REGISTER_AND_RUN = (
    "import sys; from mlray.config.jobs import Job, register; from tests.config.toy_job import ToyJobConfig; "
    "register(Job('toy', 'toy.yaml', ToyJobConfig, 'tests.config.toy_job:main')); "
    "from {module} import main; sys.exit(main(sys.argv[1:]))"
)


def summary_of(module: str, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-c", REGISTER_AND_RUN.format(module=module), *args],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_registered_job_runs_from_both_commands(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text("word: hi\n")
    by_cli = summary_of("mlray.cli", "toy", "--config", str(config), "--set", "times=3")
    assert by_cli["job"] == "toy" and by_cli["said"] == ["hi"] * 3
    by_image = summary_of("jobs.__main__", "toy", "--config", str(config))
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
