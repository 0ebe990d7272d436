"""The README's ``ray job submit`` lines, run as written against a cluster started as ``make cluster-up`` does.

They run by ``sh`` in a copy of the checkout (the cluster's project folder), with the venv
first on PATH and ``RAY_AUTH_MODE=token``, as the README's shell has them; only the dashboard
address is the test cluster's, and train and optimize get a shorter run appended.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mlray.storage import Storage
from tests.job_submit import job_summary, submit_as_documented

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_ADDRESS = "--address http://127.0.0.1:8265"
SHORTER = {"train": " --set training.num_epochs=2", "optimize": " --set solver.time_limit=5"}


def documented_submissions() -> dict[str, str]:
    """Job name -> the README's ``ray job submit`` line for it (continuation lines joined), in README order."""
    lines = re.sub(r"\\\n\s*", "", README.read_text()).splitlines()
    submissions = {}
    for line in lines:
        found = re.match(r"ray job submit .* -- python -m jobs\.(\w+) ", line)
        if found:
            submissions[found.group(1)] = line.strip()
    return submissions


def test_readme_documents_a_submission_for_each_job_step():
    submissions = documented_submissions()
    assert list(submissions) == ["preprocess", "train", "optimize", "batch_predict"], submissions
    assert all(DOCUMENTED_ADDRESS in line and "--working-dir . --" in line for line in submissions.values())


def test_documented_job_submissions_run_on_the_cluster(local_cluster):
    project = local_cluster.project_dir
    summaries = {}
    for job, line in documented_submissions().items():
        command = line.replace(DOCUMENTED_ADDRESS, f"--address {local_cluster.ports.dashboard_url}") + SHORTER.get(job, "")
        result = submit_as_documented(command, cwd=project, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        summaries[job] = job_summary(result.stdout, job)

    # Outputs landed in the project folder (absolute locations), not in Ray's throwaway copy of it.
    assert (project / "data/processed/training.parquet").is_file()
    trained = summaries["train"]
    assert trained["status"] == "completed" and trained["epochs_completed"] == 2, trained
    assert Path(trained["checkpoint_uri"]).is_relative_to(project / "runs/storage")
    assert Storage(str(project / "runs/storage/mlray-train/model")).list()
    solved = summaries["optimize"]
    assert solved["feasible"], solved
    predictions = pd.read_parquet(project / "runs/predictions")
    assert len(predictions) == len(pd.read_parquet(project / "data/processed/training.parquet"))

    # MLflow: the cluster's server (HTTP), whose store is the project's runs/mlflow.db.
    mlflow = MlflowClient(local_cluster.ports.mlflow_url)
    assert mlflow.get_run(trained["mlflow_run_id"]).info.status == "FINISHED"
    assert mlflow.get_run(solved["mlflow_run_id"]).data.metrics["objective"] == solved["objective"]
    assert (project / "runs/mlflow.db").is_file()


def test_working_dir_upload_leaves_out_venv_outputs_and_git(local_cluster):
    project = local_cluster.project_dir
    for heavy in (".venv", "runs", "data", "mlruns", ".git"):
        (project / heavy).mkdir(exist_ok=True)
        (project / heavy / "marker").write_text("must not be uploaded")
    command = (
        f"ray job submit --address {local_cluster.ports.dashboard_url} --working-dir . -- "
        "python -c 'import os, json; print(json.dumps({\"job\": \"listing\", \"cwd\": os.getcwd(), "
        "\"entries\": sorted(os.listdir())}))'"
    )
    result = submit_as_documented(command, cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    listing = job_summary(result.stdout, "listing")
    assert Path(listing["cwd"]) != project  # Ray's unpacked copy
    assert {"jobs", "mlray", "configs"} <= set(listing["entries"])
    assert not {".venv", "runs", "data", "mlruns", ".git"} & set(listing["entries"]), listing["entries"]
