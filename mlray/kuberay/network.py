"""NetworkPolicies: default deny in and out, then what each workload's pods must reach (the Ray head,
Google's APIs, MLflow, the feature server, Prometheus) and who may reach them."""

from __future__ import annotations

from urllib.parse import urlsplit

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.access import RayClusterRef
from mlray.kuberay.manifests import RAY_NODE_SELECTOR, SERVE_WORKLOAD, Names, metadata
from mlray.kuberay.pods import HEAD_PORTS, RAY_CLIENT_LABEL, WORKLOAD_LABEL, Manifest


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

