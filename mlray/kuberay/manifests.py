"""The Kubernetes objects of the platform, built from configs/kuberay.yaml and the job configs.

One function per object family; ``mlray.kuberay.render`` arranges them in files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import yaml

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.pods import (
    HEAD_PORTS,
    RAY_CLIENT_LABEL,
    WORKLOAD_LABEL,
    Manifest,
    ray_cluster_spec,
    submitter_template,
)
from mlray.kuberay.workloads import JobSettings, ServeSettings
from mlray.serve.cluster_env import kubernetes_env as serving_cluster_env

RAY_API = "ray.io/v1"
MONITORING_API = "monitoring.coreos.com/v1"
RAY_NODE_SELECTOR = {"ray.io/is-ray-node": "yes"}  # KubeRay labels every Ray pod with it
PART_OF = {"app.kubernetes.io/part-of": "mlray", "app.kubernetes.io/managed-by": "mlray-kuberay"}
WORKLOAD_IDENTITY_ANNOTATION = "iam.gke.io/gcp-service-account"
MLFLOW_SELECTOR = {"app.kubernetes.io/name": "mlflow"}
FEATURE_SERVER_SELECTOR = {"app.kubernetes.io/name": "feast-feature-server"}
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


def job_entrypoint(config: KubeRayConfig, settings: JobSettings) -> str:
    workload = settings.workload
    parts = [f"python -m {workload.module} --config configs/{workload.config_file}"]
    if settings.has_storage:
        parts.append(f"--set storage.uri={config.gcp.checkpoint_uri}/{workload.command}")
    if settings.has_mlflow:
        parts.append(f"--set mlflow.tracking_uri={mlflow_uri(config)}")
    return " ".join(parts)


def runtime_env_yaml(config: KubeRayConfig, settings: JobSettings) -> str:
    # The code and configs are baked into the image (no working_dir upload); the
    # runtime env only carries what every worker of the job must see.
    env_vars = {
        **config.jobs.env,
        "GOOGLE_CLOUD_PROJECT": config.gcp.project,
        "RAY_USAGE_STATS_ENABLED": "0",
        "FEAST_USAGE": "False",
        "MLRAY_JOB": settings.workload.command,
        # Ray Train polls for draining (preempted) nodes every 5 s by default: a large
        # bite of a ~25 s spot grace period. Poll every second instead.
        "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S": "1",
    }
    return yaml.safe_dump({"env_vars": env_vars}, sort_keys=True)


def ray_job(config: KubeRayConfig, settings: JobSettings) -> Manifest:
    names = Names(config)
    workload = settings.workload.command
    groups = [group.model_copy(update={"min_replicas": 0, "replicas": 0}) for group in config.worker_groups]
    spec: Manifest = {
        "entrypoint": job_entrypoint(config, settings),
        "runtimeEnvYAML": runtime_env_yaml(config, settings),
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
    """Serve's cluster settings (Ray's HAProxy in front of direct ingress, ``mlray.serve.cluster_env``),
    the Serve app pointed at GCS and MLflow, and its API keys mounted from a Secret, on every Ray pod.

    Serve reads its settings when Ray's processes import it, so they go in the container env of ``ray start``.
    """
    names = Names(config)
    env = serving_cluster_env()
    if "storage" in settings.sections:
        # Serve loads the bundles the train RayJob exported under its storage root.
        env.append({"name": "MLRAY_STORAGE__URI", "value": f"{config.gcp.checkpoint_uri}/train"})
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
        container["env"] += env
        if settings.api_keys_file:
            keys = PurePosixPath(settings.api_keys_file)
            template["spec"]["volumes"].append(
                {
                    "name": "api-keys",
                    "secret": {
                        "secretName": names("serve-api-keys"),
                        "items": [{"key": keys.name, "path": keys.name}],
                    },
                }
            )
            container["volumeMounts"].append(
                {"name": "api-keys", "mountPath": str(keys.parent), "readOnly": True}
            )


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


def service_accounts(config: KubeRayConfig, job_workloads: list[str]) -> list[Manifest]:
    """One per workload, bound to its own GCP service account via Workload Identity (no key files)."""
    names = Names(config)
    accounts = []
    for workload in [CLUSTER_WORKLOAD, *job_workloads, SERVE_WORKLOAD]:
        annotations = {WORKLOAD_IDENTITY_ANNOTATION: names.gcp_service_account(workload)}
        accounts.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": metadata(config, names(workload), workload, annotations=annotations),
                # Pods opt in where they need the Kubernetes API (the head's autoscaler).
                "automountServiceAccountToken": False,
            }
        )
    # The submitter only talks to the Ray dashboard: no cloud identity, no API token.
    accounts.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(config, names(SUBMITTER_WORKLOAD), SUBMITTER_WORKLOAD),
            "automountServiceAccountToken": False,
        }
    )
    return accounts


def autoscaler_rbac(config: KubeRayConfig, job_workloads: list[str]) -> list[Manifest]:
    """What the Ray autoscaler sidecar in each head needs, and nothing more, in this namespace only."""
    names = Names(config)
    role_name = names("ray-autoscaler")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(config, role_name),
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["get", "patch"]},
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(config, role_name),
        "subjects": [
            {"kind": "ServiceAccount", "name": names(workload), "namespace": config.namespace}
            for workload in [CLUSTER_WORKLOAD, *job_workloads, SERVE_WORKLOAD]
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
    }
    return [role, binding]


def _policy(config: KubeRayConfig, name: str, selector: dict[str, str], ingress: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(config, Names(config)(name)),
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def _tcp(*ports: int) -> list[Manifest]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policies(config: KubeRayConfig) -> list[Manifest]:
    """Deny all ingress, then open exactly the flows of the platform's network design."""
    net, monitoring = config.network, config.monitoring
    ray_pods = {"podSelector": {"matchLabels": RAY_NODE_SELECTOR}}
    ray_clients = {"podSelector": {"matchLabels": {RAY_CLIENT_LABEL: "true"}}}
    monitoring_ns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": net.monitoring_namespace}}
    }
    ingress_ns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": net.ingress_namespace}}
    }
    operator_ns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": net.operator_namespace}}
    }
    load_balancers = [{"ipBlock": {"cidr": cidr}} for cidr in net.load_balancer_cidrs]
    head_selector = {**RAY_NODE_SELECTOR, "ray.io/node-type": "head"}
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata(config, Names(config)("default-deny-ingress")),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
        # Ray nodes talk to each other on GCS, raylet, object manager and worker ports (a wide range).
        _policy(config, "ray-internal", RAY_NODE_SELECTOR, [{"from": [ray_pods]}]),
        # Jobs API / dashboard and Ray client: job submitters, the KubeRay operator (status polling).
        _policy(
            config,
            "ray-head-clients",
            head_selector,
            [
                {
                    "from": [ray_clients, operator_ns],
                    "ports": _tcp(HEAD_PORTS["dashboard"], HEAD_PORTS["client"]),
                }
            ],
        ),
        # Prometheus scrapes Ray's metrics export port and the head's autoscaler and dashboard metrics.
        _policy(
            config,
            "ray-metrics",
            RAY_NODE_SELECTOR,
            [
                {
                    "from": [monitoring_ns],
                    "ports": _tcp(
                        monitoring.metrics_port, HEAD_PORTS["as-metrics"], HEAD_PORTS["dash-metrics"]
                    ),
                }
            ],
        ),
        # Serve's HTTP proxy: from the gateway, Google's load balancers / health checks and the
        # KubeRay operator, which checks the proxies' health before routing to a cluster.
        _policy(
            config,
            "serve",
            {**RAY_NODE_SELECTOR, WORKLOAD_LABEL: SERVE_WORKLOAD},
            [{"from": [ingress_ns, operator_ns, *load_balancers], "ports": _tcp(config.service.serve_port)}],
        ),
        # MLflow tracking server: written to by jobs on the Ray pods.
        _policy(
            config,
            "mlflow",
            MLFLOW_SELECTOR,
            [{"from": [ray_pods, ray_clients], "ports": _tcp(net.mlflow_port)}],
        ),
        # Feast feature server: online lookups from Serve replicas and batch jobs.
        _policy(
            config,
            "feature-server",
            FEATURE_SERVER_SELECTOR,
            [{"from": [ray_pods], "ports": _tcp(net.feature_server_port)}],
        ),
        # Prometheus itself, where it runs in this namespace: queried by the Ray dashboard.
        _policy(
            config,
            "prometheus",
            {"app.kubernetes.io/name": "prometheus"},
            [{"from": [{"podSelector": {"matchLabels": head_selector}}], "ports": _tcp(net.prometheus_port)}],
        ),
    ]


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
