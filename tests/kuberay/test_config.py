"""configs/kuberay.yaml: bad cluster shapes fail on load, naming the field."""

from __future__ import annotations

import pytest

from mlray.config import ConfigError, load_config
from mlray.config.kuberay import KubeRayConfig
from mlray.config.base import ConfigModel
from mlray.config.jobs import Job, cluster_jobs, job_named
from mlray.config.sections import StorageConfig
from mlray.kuberay.workloads import job_settings

from .conftest import PROJECT_ROOT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "worker_groups: [{name: cpu, min_replicas: 3, replicas: 1}]",
            "min_replicas <= replicas <= max_replicas",
        ),
        ("worker_groups: [{name: GPU}]", "worker_groups.0.name"),
        ("worker_groups: [{name: g, gpus: 1}]", "gpus > 0 needs an accelerator type"),
        ("worker_groups: [{name: a}, {name: a}]", "duplicate names ['a']"),
        ("service: {worker_groups: [nope]}", "service.worker_groups: ['nope'] are not in worker_groups"),
        ("gcp: {checkpoint_uri: /local/path}", "expected a gs://bucket[/prefix] URI"),
        ("head: {memory: 8 GB}", "head.memory"),
        ("jobs: {deadline_margin_seconds: 0}", "jobs.deadline_margin_seconds"),
    ],
)
def test_bad_cluster_shapes_fail_naming_the_field(tmp_path, text, expected):
    path = tmp_path / "kuberay.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(KubeRayConfig, path, environ={})
    assert expected in str(info.value)


def test_job_catalog_matches_the_contracted_entrypoints():
    assert {(job.name, job.module, job.rayjob_config_file) for job in cluster_jobs()} == {
        ("train", "jobs.train", "train.yaml"),
        ("tune", "jobs.tune", "tune.yaml"),
        ("optimize", "jobs.optimize", "optimize.yaml"),
        ("preprocess", "jobs.preprocess", "preprocess.yaml"),
        ("batch-predict", "jobs.batch_predict", "batch_predict.yaml"),
        ("materialize", "jobs.materialize", "features.gcp.yaml"),  # the GCP stores on GKE
    }


class SectionlessConfig(ConfigModel):
    storage: StorageConfig = StorageConfig()


def test_config_without_timeouts_or_spot_falls_back_to_shared_defaults(tmp_path):
    settings = job_settings(Job("future", "not_yet.yaml", SectionlessConfig, "jobs.future:main"), tmp_path)
    assert settings.total_runtime == 3600 and settings.grace_period == 25.0
    assert settings.has_storage and "no timeouts section" in settings.source


def test_registered_config_is_read_from_its_file(tmp_path):
    (tmp_path / "train.yaml").write_text("timeouts: {total_runtime: null}\nspot: {grace_period: 12}\n")
    settings = job_settings(job_named("train"), tmp_path)
    assert settings.total_runtime is None and settings.grace_period == 12
    assert settings.deadline_seconds(900) is None
    assert settings.has_storage and settings.has_mlflow


def test_shipped_kuberay_config_loads():
    config = load_config(KubeRayConfig, PROJECT_ROOT / "configs" / "kuberay.yaml", environ={})
    assert [g.market for g in config.worker_groups].count("spot") >= 2
