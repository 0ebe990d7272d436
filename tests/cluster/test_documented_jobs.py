"""The README's ``ray job submit`` lines, run as written against a cluster started as ``make cluster-up`` does.

They run by ``sh`` in a copy of the checkout (the cluster's project folder), with the venv
first on PATH and ``RAY_AUTH_MODE=token``, as the README's shell has them; only the dashboard
address is the test cluster's, and train, tune and optimize get a shorter run appended. No line names a
path: every output must land under the cluster's storage root (``MLRAY_STORAGE__URI``, the project's
runs/storage), where the next job of the pipeline finds it.
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
PIPELINE = ["preprocess", "materialize", "train", "tune", "optimize", "batch_predict"]
SHORTER = {
    "train": " --set training.num_epochs=2",
    "tune": " --set num_samples=2"
            " --set 'overrides=[training.num_epochs=2, training.early_stopping.enabled=false]'",
    "optimize": " --set solver.time_limit=5",
}


CONFIG_FILES = {"preprocess": "preprocess.yaml", "materialize": "features.yaml", "train": "train.yaml",
                "tune": "tune.yaml", "optimize": "optimize.yaml", "batch_predict": "batch_predict.yaml"}


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
    assert list(submissions) == PIPELINE, submissions
    for job, line in submissions.items():
        assert line == (f"ray job submit {DOCUMENTED_ADDRESS} --working-dir . -- python -m jobs.{job} "
                        f"--config configs/{CONFIG_FILES[job]}"), line


def test_documented_job_submissions_run_on_the_cluster(local_cluster):
    project = local_cluster.project_dir
    summaries = {}
    for job, line in documented_submissions().items():
        command = line.replace(DOCUMENTED_ADDRESS, f"--address {local_cluster.ports.dashboard_url}") + SHORTER.get(job, "")
        result = submit_as_documented(command, cwd=project, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        summaries[job] = job_summary(result.stdout, job)

    # Outputs landed under the cluster's storage root (the project's runs/storage), not in Ray's
    # throwaway copy of the folder, and each job found what the one before it wrote there.
    root = project / "runs/storage"
    assert summaries["preprocess"]["artifacts"]["training"] == str(root / "data/processed/training.parquet")
    materialized = summaries["materialize"]
    assert materialized["status"] == "ok" and materialized["views"]["driver_hourly_stats"]["source_rows"] > 0
    assert {"registry.db", "online_store.db"} <= {p.name for p in (root / "feature_store").iterdir()}
    trained = summaries["train"]
    assert trained["status"] == "completed" and trained["epochs_completed"] == 2, trained
    assert Path(trained["checkpoint_uri"]).is_relative_to(root)
    assert trained["model_uri"] == str(root / "mlray-train/model") and Storage(trained["model_uri"]).list()
    tuned = summaries["tune"]
    assert tuned["status"] == "completed" and len(tuned["trials"]) == 2, tuned
    assert Path(tuned["best_checkpoint_uri"]).is_relative_to(root / "mlray-tune")
    solved = summaries["optimize"]
    assert solved["feasible"] and solved["problem"] == "ft06", solved
    assert Path(solved["plots"]["gantt"]).is_relative_to(root / "optimize/mlray-optimize")
    predicted = summaries["batch_predict"]
    assert predicted["output_uri"] == str(root / "predictions")
    predictions = pd.read_parquet(root / "predictions")
    assert len(predictions) == summaries["preprocess"]["rows"]["training"]
    assert not (project / "data").exists()  # nothing relative to a working directory

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
