"""The session cluster: Ray workers reach the same storage, jobs API accepts entrypoints."""

import sys

import ray

from mlray.storage import Storage
from tests.job_submit import submit


def test_ray_workers_write_to_the_emulator(ray_cluster, gcs_uri):
    @ray.remote
    def write(uri: str, name: str) -> str:
        return Storage(uri).write_text(name, "from a worker")

    written = ray.get([write.remote(gcs_uri, f"w{i}.txt") for i in range(3)])
    assert written == [f"{gcs_uri}/w{i}.txt" for i in range(3)]
    assert Storage(gcs_uri).list() == ["w0.txt", "w1.txt", "w2.txt"]


def test_ray_job_submit_runs_project_code(ray_cluster, gcs_uri):
    script = f"from mlray.storage import Storage; print(Storage({gcs_uri!r}).write_text('job.txt', 'ok'))"
    result = submit(ray_cluster.dashboard_url, sys.executable, "-c", script, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"{gcs_uri}/job.txt" in result.stdout
    assert Storage(gcs_uri).read_text("job.txt") == "ok"


def test_a_submitted_jobs_runtime_env_vars_are_not_named_again_by_ray_init(monkeypatch):
    """Ray refuses a ray.init runtime env naming a variable the job's runtime env (a RayJob's
    runtimeEnvYAML) sets; those reach the workers anyway."""
    import json

    from mlray.cluster.runtime import JOB_CONFIG_ENV, without_job_env_vars

    propagated = {"GOOGLE_CLOUD_PROJECT": "p", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1"}
    monkeypatch.delenv(JOB_CONFIG_ENV, raising=False)
    assert without_job_env_vars(propagated) == propagated
    job_config = {"runtime_env": {"env_vars": {"GOOGLE_CLOUD_PROJECT": "p"}}}
    monkeypatch.setenv(JOB_CONFIG_ENV, json.dumps(job_config))
    assert without_job_env_vars(propagated) == {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:1"}
