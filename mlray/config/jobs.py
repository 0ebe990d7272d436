"""The platform's jobs, in one table that everything else reads.

``mlray <job>``, ``python -m jobs <job>``, ``python -m jobs.<job>``, the KubeRay renderer (one RayJob per
job that runs on a cluster), ``configs/`` (one file per job) and the configuration reference all come from
``JOBS``. A job is a name, its config file, its config model and the function that runs it (config ->
summary dict), named by import path so that this table stays as light as the config models.

A new job is one module with its config model and its ``main`` (see ``jobs/train.py``) and one line here,
or one ``register(Job(...))`` call for a job that lives outside the project (``tests/toy_job.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlray.config.base import ConfigModel
from mlray.config.batch_predict import BatchPredictJobConfig
from mlray.config.demo import DemoConfig
from mlray.config.features import FeaturesConfig
from mlray.config.optimize import OptimizeJobConfig
from mlray.config.preprocess import PreprocessJobConfig
from mlray.config.train import TrainJobConfig
from mlray.config.tune import TuneJobConfig


@dataclass(frozen=True)
class Job:
    """``name``: the subcommand and the RayJob's name (``batch-predict``); ``run``: ``module:function``,
    called with the validated config, returning the job's summary."""

    name: str
    config_file: str  # under configs/
    config: type[ConfigModel]
    run: str
    cluster_config_file: str | None = None  # the RayJob's config, when it is not config_file
    on_cluster: bool = True  # False: local only, no RayJob

    @property
    def module_name(self) -> str:
        """The name as a Python module (``batch_predict``): ``jobs.<module_name>``, the summary's ``job``."""
        return self.name.replace("-", "_")

    @property
    def module(self) -> str:
        return f"jobs.{self.module_name}"

    @property
    def rayjob_config_file(self) -> str:
        return self.cluster_config_file or self.config_file


JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add a job to the table (a name already there is replaced)."""
    JOBS[job.name] = job
    return job


def unregister(name: str) -> None:
    JOBS.pop(name, None)


def job_named(name: str) -> Job:
    """The job called ``name`` (``batch-predict`` or ``batch_predict``); KeyError listing the known ones."""
    found = JOBS.get(name) or JOBS.get(name.replace("_", "-"))
    if found is None:
        raise KeyError(f"no job {name!r} (jobs: {', '.join(JOBS)})")
    return found


def cluster_jobs() -> list[Job]:
    """The jobs KubeRay runs, each as a RayJob."""
    return [job for job in JOBS.values() if job.on_cluster]


for _job in (
    Job("train", "train.yaml", TrainJobConfig, "jobs.train:main"),
    Job("tune", "tune.yaml", TuneJobConfig, "jobs.tune:main"),
    Job("optimize", "optimize.yaml", OptimizeJobConfig, "jobs.optimize:main"),
    Job("preprocess", "preprocess.yaml", PreprocessJobConfig, "jobs.preprocess:main"),
    Job("batch-predict", "batch_predict.yaml", BatchPredictJobConfig, "jobs.batch_predict:main"),
    # On GKE the feature store is the GCP one (BigQuery, Datastore, registry in GCS): the local
    # configs/features.yaml (files + SQLite) would materialize into a pod that is deleted afterwards.
    Job("materialize", "features.yaml", FeaturesConfig, "jobs.materialize:main",
        cluster_config_file="features.gcp.yaml"),
    Job("demo", "demo.yaml", DemoConfig, "jobs.demo:main", on_cluster=False),
):
    register(_job)
