"""Which model validates which file in ``configs/`` (the reference in docs/configuration.md, tests):
each job's files from the jobs table (``mlray.config.jobs``), then the configs that are not a job's."""

from __future__ import annotations

from mlray.config.base import ConfigModel
from mlray.config.inference import InferenceConfig
from mlray.config.jobs import JOBS
from mlray.config.kuberay import KubeRayConfig

OTHER_CONFIG_FILES: dict[str, type[ConfigModel]] = {
    "inference.yaml": InferenceConfig,  # serve_apps/ (serve run, the RayService)
    "kuberay.yaml": KubeRayConfig,  # the manifests in clusters/
}


def config_files() -> dict[str, type[ConfigModel]]:
    """File name -> model, for the jobs registered now and the other configs."""
    files: dict[str, type[ConfigModel]] = {}
    for job in JOBS.values():
        files[job.config_file] = job.config
        files[job.rayjob_config_file] = job.config
    return {**files, **OTHER_CONFIG_FILES}


def model_for_file(name: str) -> type[ConfigModel]:
    try:
        return config_files()[name]
    except KeyError:
        raise KeyError(f"configs/{name} has no model: add its job to mlray/config/jobs.py") from None
