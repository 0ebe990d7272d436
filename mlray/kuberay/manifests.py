"""The Kubernetes objects of the platform, built from configs/kuberay.yaml and the job configs.

One function per object family; ``mlray.kuberay.render`` arranges them in files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import yaml

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.pods import (
    HEAD_PORTS,
    RAY_CLIENT_LABEL,
    WORKLOAD_LABEL,
    Manifest,
    ray_cluster_spec,
    set_env,
    submitter_template,
)
from mlray.kuberay.rules import cluster_spec_paths
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


@dataclass(frozen=True)
class RayClusterRef:
    """One Ray cluster the manifests create: whose it is, and how its pods can be told apart."""

    workload: str
    kind: str  # RayCluster, RayJob or RayService
    name: str  # the object's name; a RayCluster's pods carry it as ray.io/cluster
    service_account: str  # of its head (and workers)
    autoscaling: bool

    @property
    def pod_selector(self) -> dict[str, str]:
        """Labels every pod of this cluster, and of no other cluster, carries."""
        if self.kind == "RayCluster":
            return {RAY_CLUSTER_LABEL: self.name}
        # KubeRay names a RayJob's or RayService's cluster <name>-<random suffix>, unknown at render
        # time: the workload label is the narrowest known one (a retry or an upgrade shares it).
        return {**RAY_NODE_SELECTOR, WORKLOAD_LABEL: self.workload}


def ray_cluster_refs(documents: list[Manifest]) -> list[RayClusterRef]:
    refs = []
    for document in documents:
        for _, cluster in cluster_spec_paths(document):
            head = cluster["headGroupSpec"]["template"]["spec"]
            refs.append(
                RayClusterRef(
                    workload=document["metadata"]["labels"][WORKLOAD_LABEL],
                    kind=document["kind"],
                    name=document["metadata"]["name"],
                    service_account=head["serviceAccountName"],
                    autoscaling=bool(cluster.get("enableInTreeAutoscaling")),
                )
            )
    return refs


# What Ray's KubeRay autoscaler (ray.autoscaler.v2 ... kuberay cloud_provider) calls: GET and PATCH
# rayclusters/<its cluster>, GET pods?labelSelector=ray.io/cluster=<it> and GET pods/<head pod>.
AUTOSCALER_RULES = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["get", "patch"]},
)


def autoscaler_rbac(config: KubeRayConfig, clusters: list[RayClusterRef]) -> list[Manifest]:
    """One Role per autoscaling cluster, bound only to that cluster's ServiceAccount, in this namespace.

    A RayCluster's Role names its RayCluster (resourceNames); a RayJob's or RayService's cluster name is
    generated by KubeRay, so theirs cannot.
    """
    names = Names(config)
    documents: list[Manifest] = []
    for cluster in clusters:
        if not cluster.autoscaling:
            continue
        role_name = names(f"{cluster.workload}-autoscaler")
        rules = [dict(rule) for rule in AUTOSCALER_RULES]
        if cluster.kind == "RayCluster":
            rules[1]["resourceNames"] = [cluster.name]
        meta = metadata(config, role_name, cluster.workload)
        documents.append({"apiVersion": RBAC_API, "kind": "Role", "metadata": meta, "rules": rules})
        documents.append(
            {
                "apiVersion": RBAC_API,
                "kind": "RoleBinding",
                "metadata": metadata(config, role_name, cluster.workload),
                "subjects": [
                    {"kind": "ServiceAccount", "name": cluster.service_account, "namespace": config.namespace}
                ],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            }
        )
    return documents


def _selector(labels: dict[str, str]) -> Manifest:
    return {"matchLabels": dict(labels)}


def _policy(
    config: KubeRayConfig,
    name: str,
    selector: dict[str, str],
    ingress: list[Manifest] | None = None,
    egress: list[Manifest] | None = None,
) -> Manifest:
    spec: Manifest = {"podSelector": _selector(selector) if selector else {}, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(config, Names(config)(name)),
        "spec": spec,
    }


def _ports(*ports: int, protocol: str = "TCP") -> list[Manifest]:
    return [{"protocol": protocol, "port": port} for port in ports]


def _pods(labels: dict[str, str]) -> Manifest:
    return {"podSelector": _selector(labels)}


def _namespace(name: str) -> Manifest:
    return {"namespaceSelector": _selector({"kubernetes.io/metadata.name": name})}


def _cidrs(cidrs: list[str]) -> list[Manifest]:
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def google_cloud_egress(config: KubeRayConfig) -> list[Manifest]:
    """Google APIs on 443 and the metadata server (Workload Identity tokens)."""
    net = config.network
    rules = [{"to": _cidrs(net.google_apis_cidrs), "ports": _ports(443)}]
    rules += [{"to": _cidrs([server.cidr]), "ports": _ports(server.port)} for server in net.metadata_server]
    return rules


def network_policies(config: KubeRayConfig, clusters: list[RayClusterRef]) -> list[Manifest]:
    """Deny all ingress and egress, then open exactly the flows of the platform's network design."""
    net, monitoring = config.network, config.monitoring
    database = config.mlflow_server.database
    ray_clients = _pods({RAY_CLIENT_LABEL: "true"})
    mlflow = [_pods(net.mlflow_pod_labels), *_cidrs(net.mlflow_cidrs)]
    load_balancers = _cidrs(net.load_balancer_cidrs)
    head_selector = {**RAY_NODE_SELECTOR, "ray.io/node-type": "head"}
    prometheus_pods = {"app.kubernetes.io/name": "prometheus"}
    dns = {
        "to": [{**_namespace(net.dns_namespace), **_pods(net.dns_pod_labels)}],
        "ports": _ports(53, protocol="UDP") + _ports(53),
    }
    policies = [
        _policy(config, "default-deny", {}, ingress=[], egress=[]),
        _policy(config, "dns", {}, egress=[dns]),
    ]
    # Ray nodes talk to each other on GCS, raylet, object manager and worker ports (a wide range),
    # but only within their own cluster.
    for cluster in clusters:
        peers = [_pods(cluster.pod_selector)]
        policies.append(
            _policy(
                config,
                f"{cluster.workload}-ray-internal",
                cluster.pod_selector,
                ingress=[{"from": peers}],
                egress=[{"to": peers}],
            )
        )
    policies += [
        # Every Ray pod: Google APIs (GCS, BigQuery, Datastore), the metadata server, MLflow and the
        # feature server.
        _policy(
            config,
            "ray-egress",
            RAY_NODE_SELECTOR,
            egress=[
                *google_cloud_egress(config),
                {"to": mlflow, "ports": _ports(net.mlflow_port)},
                {"to": [_pods(net.feature_server_pod_labels)], "ports": _ports(net.feature_server_port)},
            ],
        ),
        # Heads: the autoscaler sidecar to the API server; the dashboard to Prometheus and Grafana.
        _policy(
            config,
            "ray-head-egress",
            head_selector,
            egress=[
                {"to": _cidrs(net.api_server_cidrs), "ports": _ports(net.api_server_port)},
                {
                    "to": [_namespace(net.monitoring_namespace)],
                    "ports": _ports(url_port(monitoring.prometheus_url), url_port(monitoring.grafana_url)),
                },
                {"to": [_pods(prometheus_pods)], "ports": _ports(net.prometheus_port)},
            ],
        ),
        # Jobs API / dashboard and Ray client: job submitters, the KubeRay operator (status polling).
        _policy(
            config,
            "ray-head-clients",
            head_selector,
            ingress=[
                {
                    "from": [ray_clients, _namespace(net.operator_namespace)],
                    "ports": _ports(HEAD_PORTS["dashboard"], HEAD_PORTS["client"]),
                }
            ],
        ),
        _policy(
            config,
            "ray-clients-egress",
            {RAY_CLIENT_LABEL: "true"},
            egress=[
                {"to": [_pods(head_selector)], "ports": _ports(HEAD_PORTS["dashboard"], HEAD_PORTS["client"])}
            ],
        ),
        # Prometheus scrapes Ray's metrics export port and the head's autoscaler and dashboard metrics.
        _policy(
            config,
            "ray-metrics",
            RAY_NODE_SELECTOR,
            ingress=[
                {
                    "from": [_namespace(net.monitoring_namespace)],
                    "ports": _ports(
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
            ingress=[
                {
                    "from": [
                        _namespace(net.ingress_namespace),
                        _namespace(net.operator_namespace),
                        *load_balancers,
                    ],
                    "ports": _ports(config.service.serve_port),
                }
            ],
        ),
        # MLflow tracking server: written to by jobs on the Ray pods; it keeps artifacts in GCS and runs
        # and the registry in Cloud SQL, reached by its Cloud SQL Auth Proxy sidecar.
        _policy(
            config,
            "mlflow",
            net.mlflow_pod_labels,
            ingress=[{"from": [_pods(RAY_NODE_SELECTOR)], "ports": _ports(net.mlflow_port)}],
            egress=[*google_cloud_egress(config), {"to": _cidrs(database.instance_cidrs),
                                                   "ports": _ports(*database.instance_ports)}],
        ),
        # Feast feature server: online lookups from Serve replicas and batch jobs; reads Datastore.
        _policy(
            config,
            "feature-server",
            net.feature_server_pod_labels,
            ingress=[{"from": [_pods(RAY_NODE_SELECTOR)], "ports": _ports(net.feature_server_port)}],
            egress=google_cloud_egress(config),
        ),
        # Prometheus itself, where it runs in this namespace: queried by the Ray dashboard.
        _policy(
            config,
            "prometheus",
            prometheus_pods,
            ingress=[{"from": [_pods(head_selector)], "ports": _ports(net.prometheus_port)}],
        ),
    ]
    return policies


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
