"""The manifests rehearsed: every rendered RayJob of clusters/, then the RayService, on a local Ray cluster.

For each RayJob in pipeline order, its ``entrypoint``, ``runtimeEnvYAML`` and head container env are
taken from the committed YAML and submitted as KubeRay's submitter does (``ray job submit
--runtime-env-json ... -- <entrypoint>``, no working_dir) to a Ray head whose working directory is a
read-only copy of the image's app directory (tests/kuberay/rehearsal.py), with the project installed
non-editable first on its PYTHONPATH. Then the RayService's ``serveConfigV2`` goes to the same cluster
with ``serve deploy`` and answers with the model the train RayJob exported.

Only what must differ on one machine is changed, all of it in ``local_mapping`` and ``LOCAL_ONLY_SETS``
below; a RayJob that cannot run as rendered (a missing config field, a path relative to the working
directory, a module not in the image, a storage root the next job does not read) fails here.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.manifests import mlflow_uri
from mlray.config.jobs import cluster_jobs
from mlray.storage import Storage
from mlray.storage.emulator import free_port
from tests.conftest import TEST_BUCKET
from tests.job_submit import job_summary
from tests.serve.conftest import assert_same_predictions, expected, sample_rows
from tests.kuberay.rehearsal import PROJECT_ROOT, RehearsalHead, container_env, image_app, tree_digest
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

CLUSTERS = PROJECT_ROOT / "clusters"
PIPELINE = ("preprocess", "materialize", "train", "tune", "optimize", "batch-predict")
CLUSTER_CPUS = 4  # logical: train's 2 workers, tune's 2 concurrent trials, optimize's 2 actors fit
JOB_TIMEOUT_S = 420
# Local-only additions to the rendered entrypoints (appended `--set`s, after the manifest's own):
LOCAL_ONLY_SETS = {
    # GKE's feature store is BigQuery + Datastore (configs/features.gcp.yaml), which have no local emulator:
    # the same config file with the local stores (Parquet under the storage root, SQLite online store).
    # (SQLite needs a local folder: repo.state_dir, added per run.)
    "materialize": ["repo.store_yaml=feature_store.yaml", "sources.kind=file",
                    "sources.location=data/processed"],  # fmt: skip
    # Shorter runs on 2 cores; the code paths are the same.
    "train": ["training.num_epochs=2"],
    "tune": ["num_samples=2"],
    "optimize": ["solver.time_limit=5"],
}


def documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((CLUSTERS / name).read_text()) if doc]


def head_container(cluster_spec: dict[str, Any]) -> dict[str, Any]:
    return cluster_spec["headGroupSpec"]["template"]["spec"]["containers"][0]


def local_mapping(config: KubeRayConfig, storage_root: str, mlflow_url: str) -> dict[str, str]:
    """Everything the rehearsal replaces in the manifests' text: GCS bucket root -> the emulator's bucket,
    the in-cluster MLflow Service -> the local MLflow server."""
    return {config.gcp.checkpoint_uri: storage_root, mlflow_uri(config): mlflow_url}


def localize(text: str, mapping: dict[str, str]) -> str:
    for rendered, local in mapping.items():
        text = text.replace(rendered, local)
    return text


def test_rendered_pipeline_covers_every_rayjob():
    assert sorted(PIPELINE) == sorted(job.name for job in cluster_jobs())
    assert all((CLUSTERS / f"rayjob-{job}.yaml").is_file() for job in PIPELINE)


def test_manifests_run_as_rendered(gcs_emulator, mlflow_server, tmp_path_factory, kuberay_config):
    root = tmp_path_factory.mktemp("rehearsal")
    app = image_app(root)
    before = tree_digest(app.app_dir)
    storage_root = f"gs://{TEST_BUCKET}/rehearsal-{uuid.uuid4().hex[:8]}"
    mapping = local_mapping(kuberay_config, storage_root, mlflow_server.url)
    (service,) = [doc for doc in documents("rayservice.yaml") if doc["kind"] == "RayService"]
    serve_env = container_env(head_container(service["spec"]["rayClusterConfig"]))
    # `ray start` gets the Serve pods' container env (HAProxy mode and the like) but not their MLRAY_*
    # settings: those go to the Serve application, so no RayJob can lean on them.
    head = RehearsalHead(
        app,
        env={
            **{name: value for name, value in serve_env.items() if not name.startswith("MLRAY_")},
            "STORAGE_EMULATOR_HOST": gcs_emulator.url,  # gs:// on the emulator
        },
        num_cpus=CLUSTER_CPUS,
    )
    head.up()
    state_dir = root / "feature-store-state"  # SQLite needs a local folder (GKE: Datastore)
    try:
        # The jobs import the installed project and the image's copy, not the editable checkout.
        probe = head.submit(
            "python -c \"import json, jobs, mlray, os, sys; "
            "print(json.dumps({'job': 'probe', 'cwd': os.getcwd(), 'mlray': mlray.__file__, "
            "'jobs': jobs.__file__, 'writable': os.access('.', os.W_OK), "
            "'finders': [getattr(f, '__module__', '') for f in sys.meta_path]}))\"",
            {}, timeout=120,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stdout[-3000:] + probe.stderr[-3000:]
        where = job_summary(probe.stdout, "probe")
        assert Path(where["cwd"]) == app.app_dir, where
        for module in ("mlray", "jobs"):
            assert not Path(where[module]).is_relative_to(PROJECT_ROOT), where
        assert not [finder for finder in where["finders"] if finder.startswith("__editable__")], where
        print(f"app directory read-only by: {head.read_only_by}")
        if head.read_only_by.startswith("read-only bind mount"):
            assert not where["writable"], where  # even for root, as in the pod's readOnlyRootFilesystem

        summaries = {}
        for job in PIPELINE:
            (manifest,) = documents(f"rayjob-{job}.yaml")
            spec = manifest["spec"]
            env = container_env(head_container(spec["rayClusterSpec"]))
            env.update(yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"])
            env = {name: localize(value, mapping) for name, value in env.items()}
            extra = LOCAL_ONLY_SETS.get(job, [])
            if job == "materialize":
                extra = [*extra, f"repo.state_dir={state_dir}"]
            entrypoint = " ".join([localize(spec["entrypoint"], mapping), *(f"--set {s}" for s in extra)])
            result = head.submit(entrypoint, env, timeout=JOB_TIMEOUT_S)
            output = result.stdout[-4000:] + result.stderr[-4000:]
            assert result.returncode == 0 and "succeeded" in result.stdout, f"{job}: {entrypoint}\n{output}"
            summaries[job.replace("-", "_")] = job_summary(result.stdout, job.replace("-", "_"))

        assert_pipeline_outputs(Storage(storage_root), summaries, mlflow_server.url)
        assert_serves_the_trained_model(head, service, mapping, storage_root, root)
    finally:
        left = head.down()
    assert not left, f"processes of the rehearsal's Ray cluster still running: {left}"
    assert tree_digest(app.app_dir) == before, f"the app directory changed ({head.read_only_by})"


def assert_pipeline_outputs(storage: Storage, summaries: dict[str, dict[str, Any]], mlflow_url: str) -> None:
    """Each job left its outputs under the one storage root, where the next job found them."""
    processed = storage.child("data", "processed")
    for table in ("training.parquet", "driver_stats.parquet", "trips.parquet"):
        assert processed.exists(table), (table, processed.list())
    with processed.fs.open(processed.path("training.parquet"), "rb") as file:
        rows = len(pd.read_parquet(file))

    materialized = summaries["materialize"]
    assert materialized["status"] == "ok" and materialized["views"], materialized
    assert all(view.get("source_rows", 1) > 0 for view in materialized["views"].values()), materialized

    trained = summaries["train"]
    assert trained["status"] == "completed", trained
    assert trained["checkpoint_uri"].startswith(storage.url()), trained
    assert storage.child("mlray-train", "model").list(), storage.list()

    tuned = summaries["tune"]
    assert tuned["status"] == "completed" and len(tuned["trials"]) == 2, tuned
    assert tuned["best_checkpoint_uri"].startswith(storage.url()), tuned

    solved = summaries["optimize"]
    assert solved["feasible"], solved

    predicted = summaries["batch_predict"]
    assert predicted["status"] == "ok" and predicted["rows"] == rows, predicted
    assert predicted["model_uri"] == storage.url("mlray-train", "model"), predicted
    assert predicted["output_uri"].startswith(storage.url()), predicted
    assert Storage(predicted["output_uri"]).list(), predicted

    mlflow = MlflowClient(mlflow_url)  # the server the entrypoints were pointed at
    for job in ("train", "tune", "optimize"):
        assert mlflow.get_run(summaries[job]["mlflow_run_id"]).info.status == "FINISHED", job
    assert mlflow.get_run(solved["mlflow_run_id"]).data.metrics["objective"] == solved["objective"]


def assert_serves_the_trained_model(
    head: RehearsalHead, service: dict[str, Any], mapping: dict[str, str], storage_root: str, root: Path
) -> None:
    """serveConfigV2 deployed as it is, the pods' MLRAY_* env given to the app, API keys as mounted files."""
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    port = free_port()  # the machine is shared: Serve's port is any free one, on loopback
    serve_config["http_options"].update({"host": "127.0.0.1", "port": port})
    app_env = {
        name: localize(value, mapping)
        for name, value in container_env(head_container(service["spec"]["rayClusterConfig"])).items()
        if name.startswith("MLRAY_")
    }
    # The pods read keys from files the Secrets are mounted as (auth.*_keys_file): same files, local folder.
    keys, admin_keys = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    (root / "api-keys").write_text(keys + "\n")
    (root / "admin-keys").write_text(admin_keys + "\n")
    app_env["MLRAY_AUTH__API_KEYS_FILE"] = str(root / "api-keys")
    app_env["MLRAY_AUTH__ADMIN_KEYS_FILE"] = str(root / "admin-keys")
    for application in serve_config["applications"]:
        application["runtime_env"] = {"env_vars": app_env}
    deployed = head.serve_deploy(serve_config, root)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 240, "the RayService's app to be ready (/readyz)", interval_s=1)
    rows = sample_rows(4, seed=5)
    answered = httpx.post(f"{url}/v1/predict", json={"instances": rows},
                          headers={"Authorization": f"Bearer {keys}"}, timeout=30)  # fmt: skip
    assert answered.status_code == 200, answered.text
    refused = httpx.post(f"{url}/v1/predict", json={"instances": rows}, timeout=30)
    assert refused.status_code == 401, refused.text

    class Trained:  # the bundle the train RayJob exported, under the shared root
        @staticmethod
        def uri(version: str) -> str:
            return f"{storage_root}/mlray-train/model"

    assert_same_predictions(answered.json()["predictions"], expected(Trained, "v1", rows))
