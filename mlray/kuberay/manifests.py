"""The Kubernetes objects of the platform, built from configs/kuberay.yaml and the job configs.

One function per object family; ``mlray.kuberay.render`` arranges them in files. Service accounts and RBAC
are in ``access.py``, NetworkPolicies in ``network.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.pods import WORKLOAD_LABEL, Manifest, ray_cluster_spec, set_env, submitter_template
from mlray.kuberay.workloads import JobSettings, ServeSettings
from mlray.process_env import SERVE_JOB, process_env

RAY_API = "ray.io/v1"
MONITORING_API = "monitoring.coreos.com/v1"
RBAC_API = "rbac.authorization.k8s.io/v1"
RAY_NODE_SELECTOR = {"ray.io/is-ray-node": "yes"}  # KubeRay labels every Ray pod with it
RAY_CLUSTER_LABEL = "ray.io/cluster"  # KubeRay's label of a pod's RayCluster (its name)
PART_OF = {"app.kubernetes.io/part-of": "mlray", "app.kubernetes.io/managed-by": "mlray-kuberay"}
WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"
SERVE_SERVICE_LABEL = {"app.kubernetes.io/name": "mlray-serve"}
CLUSTER_WORKLOAD = "ray"
SERVE_WORKLOAD = "serve"
SUBMITTER_WORKLOAD = "job-submitter"


@dataclass(frozen=True)
class Names:
    """Every object name, in one place: Kubernetes, GCP and the renderer agree on them."""

    config: KubeRayConfig

    def __call__(self, workload: str) -> str:
        return f"{self.config.name_prefix}-{workload}"

    @property
    def cluster(self) -> str:
        return self.config.name_prefix

    def gcp_service_account(self, workload: str) -> str:
        return f"{self(workload)}@{self.config.gcp.project}.iam.gserviceaccount.com"


def metadata(config: KubeRayConfig, name: str, workload: str | None = None, **extra: object) -> Manifest:
    labels = dict(PART_OF)
    if workload is not None:
        labels[WORKLOAD_LABEL] = workload
    return {"name": name, "namespace": config.namespace, "labels": labels, **extra}


def ray_cluster(config: KubeRayConfig, checkpoint_grace: float) -> Manifest:
    names = Names(config)
    return {
        "apiVersion": RAY_API,
        "kind": "RayCluster",
        "metadata": metadata(config, names.cluster, CLUSTER_WORKLOAD),
        "spec": ray_cluster_spec(
            config, CLUSTER_WORKLOAD, names(CLUSTER_WORKLOAD), list(config.worker_groups), checkpoint_grace
        ),
    }


def job_overrides(config: KubeRayConfig, settings: JobSettings) -> list[str]:
    """The ``--set`` overrides of a RayJob's entrypoint: the shared storage root (every job of the pipeline
    reads what the one before wrote under it; run names keep their checkpoints apart), the MLflow server of
    clusters/mlflow.yaml, then the job's own ``jobs.overrides``."""
    overrides = []
    if settings.has_storage:
        overrides.append(f"storage.uri={config.gcp.checkpoint_uri}")
    if settings.has_mlflow:
        overrides.append(f"mlflow.tracking_uri={mlflow_uri(config)}")
    return overrides + config.jobs.overrides.get(settings.job.name, [])


def job_entrypoint(config: KubeRayConfig, settings: JobSettings) -> str:
    # `python -m jobs <name>`: every job of the jobs table, also one without a jobs/<name>.py of its own.
    parts = [f"python -m jobs {settings.job.name} --config configs/{settings.job.rayjob_config_file}"]
    parts += [f"--set {override}" for override in job_overrides(config, settings)]
    return " ".join(parts)


def runtime_env_yaml(config: KubeRayConfig, settings: JobSettings, env: Mapping[str, str]) -> str:
    # The code and configs are baked into the image (no working_dir upload); the
    # runtime env only carries what every worker of the job must see.
    env_vars = {
        **config.jobs.env,
        "GOOGLE_CLOUD_PROJECT": config.gcp.project,
        # The job's process env (mlray.process_env), e.g. RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S from the
        # train config's spot.drain_poll_interval_s: the same values its driver applies when it starts.
        **env,
        "MLRAY_JOB": settings.job.name,
    }
    return yaml.safe_dump({"env_vars": env_vars}, sort_keys=True)


def ray_job(config: KubeRayConfig, settings: JobSettings, env: Mapping[str, str] | None = None) -> Manifest:
    """``env``: the job's ``process_env(job, job_config)`` from its config with the entrypoint's overrides
    (the renderer loads it); None: the part that needs no config."""
    names = Names(config)
    workload = settings.job.name
    env = process_env(workload) if env is None else env
    groups = [group.model_copy(update={"min_replicas": 0, "replicas": 0}) for group in config.worker_groups]
    spec: Manifest = {
        "entrypoint": job_entrypoint(config, settings),
        "runtimeEnvYAML": runtime_env_yaml(config, settings, env),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": config.jobs.ttl_seconds_after_finished,
        "backoffLimit": config.jobs.backoff_limit,
        "submitterPodTemplate": submitter_template(config, SUBMITTER_WORKLOAD, names(SUBMITTER_WORKLOAD)),
        "rayClusterSpec": ray_cluster_spec(config, workload, names(workload), groups, settings.grace_period),
    }
    deadline = settings.deadline_seconds(config.jobs.deadline_margin_seconds)
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": RAY_API,
        "kind": "RayJob",
        "metadata": metadata(config, names(workload), workload),
        "spec": spec,
    }


def upgrade_strategy(config: KubeRayConfig) -> Manifest:
    strategy: Manifest = {"type": config.service.upgrade_strategy}
    if config.service.upgrade_strategy == "NewClusterWithIncrementalUpgrade":
        options = config.service.incremental
        strategy["clusterUpgradeOptions"] = {
            "gatewayClassName": options.gateway_class_name,
            "stepSizePercent": options.step_size_percent,
            "intervalSeconds": options.interval_seconds,
            "maxSurgePercent": options.max_surge_percent,
        }
    return strategy


def mlflow_uri(config: KubeRayConfig) -> str:
    return f"http://mlflow.{config.namespace}.svc:{config.network.mlflow_port}"


def serve_pod_settings(config: KubeRayConfig, settings: ServeSettings, cluster_spec: Manifest) -> None:
    """Serve's process env (Ray's HAProxy in front of direct ingress, ``mlray.serve.cluster_env``, through
    ``mlray.process_env``), the Serve app pointed at GCS and MLflow, and its API keys mounted from a Secret,
    on every Ray pod.

    Serve reads its settings when Ray's processes import it, so they go in the container env of ``ray start``.
    """
    names = Names(config)
    env = []
    if "storage" in settings.sections:
        # Serve loads the bundles the train RayJob exported under the shared storage root.
        env.append({"name": "MLRAY_STORAGE__URI", "value": config.gcp.checkpoint_uri})
    if "mlflow" in settings.sections:
        env.append({"name": "MLRAY_MLFLOW__TRACKING_URI", "value": mlflow_uri(config)})
    if "prediction_log" in settings.sections:
        env.append(
            {
                "name": "MLRAY_PREDICTION_LOG__SINK",
                "value": f"{config.gcp.checkpoint_uri}/serve/prediction_logs",
            }
        )
    templates = [cluster_spec["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster_spec["workerGroupSpecs"]
    ]
    for template in templates:
        container = template["spec"]["containers"][0]
        # Serving's process env (mlray.process_env: Serve's cluster settings on top of the platform's,
        # which every Ray container has); MLflow's URI comes from the config override below.
        set_env(container["env"], process_env(SERVE_JOB))
        container["env"] += env
        # One projected volume per folder: prediction and admin keys may share /etc/mlray/serve/,
        # and two volumes cannot be mounted at one path.
        folders: dict[PurePosixPath, list[tuple[str, PurePosixPath]]] = {}
        for secret, path in settings.key_files.items():
            folders.setdefault(PurePosixPath(path).parent, []).append((secret, PurePosixPath(path)))
        for index, (folder, files) in enumerate(sorted(folders.items())):
            volume = "serve-keys" if index == 0 else f"serve-keys-{index}"
            sources = [
                {"secret": {"name": names(secret), "items": [{"key": path.name, "path": path.name}]}}
                for secret, path in files
            ]
            template["spec"]["volumes"].append({"name": volume, "projected": {"sources": sources}})
            container["volumeMounts"].append({"name": volume, "mountPath": str(folder), "readOnly": True})


def ray_service(
    config: KubeRayConfig, serve_config_text: str, settings: ServeSettings, checkpoint_grace: float
) -> Manifest:
    names = Names(config)
    groups = [config.group(name) for name in config.service.worker_groups]
    cluster_spec = ray_cluster_spec(
        config, SERVE_WORKLOAD, names(SERVE_WORKLOAD), groups, checkpoint_grace, serve=True
    )
    serve_pod_settings(config, settings, cluster_spec)
    ports = [
        {"name": "serve", "port": config.service.serve_port, "targetPort": config.service.serve_port},
        {
            "name": "metrics",
            "port": config.monitoring.metrics_port,
            "targetPort": config.monitoring.metrics_port,
        },
    ]
    return {
        "apiVersion": RAY_API,
        "kind": "RayService",
        "metadata": metadata(config, names(SERVE_WORKLOAD), SERVE_WORKLOAD),
        "spec": {
            # Exactly serve_apps/config.yaml: the local `serve run` and the cluster deploy the same apps.
            "serveConfigV2": serve_config_text,
            "upgradeStrategy": upgrade_strategy(config),
            "serveService": {
                "metadata": {
                    "name": f"{names(SERVE_WORKLOAD)}-svc",
                    "labels": {**PART_OF, **SERVE_SERVICE_LABEL},
                },
                "spec": {"ports": ports},
            },
            "rayClusterConfig": cluster_spec,
        },
    }


def monitors(config: KubeRayConfig) -> list[Manifest]:
    """What the Prometheus operator scrapes: Ray heads and workers (pods) and the Serve service."""
    names = Names(config)

    def monitor(kind: str, name: str, selector: dict[str, str], ports: list[str]) -> Manifest:
        meta = metadata(config, names(name))
        meta["labels"].update(config.monitoring.monitor_labels)
        endpoints = [
            {"port": port, "interval": config.monitoring.scrape_interval, "path": "/metrics"}
            for port in ports
        ]
        return {
            "apiVersion": MONITORING_API,
            "kind": kind,
            "metadata": meta,
            "spec": {
                "namespaceSelector": {"matchNames": [config.namespace]},
                "selector": {"matchLabels": selector},
                "podMetricsEndpoints" if kind == "PodMonitor" else "endpoints": endpoints,
            },
        }

    return [
        monitor(
            "PodMonitor",
            "ray-head",
            {**RAY_NODE_SELECTOR, "ray.io/node-type": "head"},
            ["metrics", "as-metrics", "dash-metrics"],
        ),
        monitor(
            "PodMonitor", "ray-workers", {**RAY_NODE_SELECTOR, "ray.io/node-type": "worker"}, ["metrics"]
        ),
        # Serve's request, latency and replica metrics, from every pod behind the Serve service.
        monitor("ServiceMonitor", "serve", SERVE_SERVICE_LABEL, ["metrics"]),
    ]
