"""The session cluster: Ray workers reach the same storage, jobs API accepts entrypoints."""

import subprocess
import sys
from pathlib import Path

import ray

from mlray.cluster.local import client_env
from mlray.storage import Storage

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_ray_workers_write_to_the_emulator(ray_cluster, gcs_uri):
    @ray.remote
    def write(uri: str, name: str) -> str:
        return Storage(uri).write_text(name, "from a worker")

    written = ray.get([write.remote(gcs_uri, f"w{i}.txt") for i in range(3)])
    assert written == [f"{gcs_uri}/w{i}.txt" for i in range(3)]
    assert Storage(gcs_uri).list() == ["w0.txt", "w1.txt", "w2.txt"]


def test_ray_job_submit_runs_project_code(ray_cluster, gcs_uri):
    script = f"from mlray.storage import Storage; print(Storage({gcs_uri!r}).write_text('job.txt', 'ok'))"
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ray")),
            "job",
            "submit",
            "--address",
            ray_cluster.dashboard_url,
            "--working-dir",
            str(PROJECT_ROOT),
            "--",
            sys.executable,  # plain `python` in a job resolves to the system interpreter
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"{gcs_uri}/job.txt" in result.stdout
    assert Storage(gcs_uri).read_text("job.txt") == "ok"
