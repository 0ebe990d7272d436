"""The MLflow tracking server on GKE: ServiceAccount, Deployment and Service (``clusters/mlflow.yaml``).

``mlflow server`` keeps runs and the model registry in Cloud SQL for PostgreSQL,
reached through the Cloud SQL Auth Proxy as a native sidecar on 127.0.0.1 (the
database URI comes from a Secret created out of band), and artifacts in GCS
(``--serve-artifacts``: jobs upload through the server, only its own Workload
Identity needs the bucket). The Service is named ``mlflow``: the RayJobs'
tracking URI (``manifests.mlflow_uri``) names it. Its NetworkPolicy is rendered
with the others (``network.network_policies``, pods labelled
``network.mlflow_pod_labels``).
"""

from __future__ import annotations

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.manifests import WORKLOAD_IDENTITY_ANNOTATION, Names, metadata
from mlray.kuberay.pods import (
    Manifest,
    container_security_context,
    pod_security_context,
    resources,
    writable_mounts,
    writable_volumes,
)

MLFLOW_WORKLOAD = "mlflow"
SERVICE_NAME = "mlflow"  # the host name in manifests.mlflow_uri
HEALTH_PATH = "/health"


def service_account(config: KubeRayConfig) -> Manifest:
    """Its own GCP identity (Workload Identity): artifact bucket and Cloud SQL client, nothing else."""
    names = Names(config)
    annotations = {WORKLOAD_IDENTITY_ANNOTATION: names.gcp_service_account(MLFLOW_WORKLOAD)}
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(config, names(MLFLOW_WORKLOAD), MLFLOW_WORKLOAD, annotations=annotations),
        "automountServiceAccountToken": False,
    }


def allowed_hosts(config: KubeRayConfig) -> str:
    """Host headers mlflow's security middleware accepts: the Service's names (probes' /health is exempt)."""
    port = config.network.mlflow_port
    hosts = [SERVICE_NAME, f"{SERVICE_NAME}.{config.namespace}", f"{SERVICE_NAME}.{config.namespace}.svc",
             f"{SERVICE_NAME}.{config.namespace}.svc.cluster.local"]  # fmt: skip
    return ",".join([*hosts, *(f"{host}:{port}" for host in hosts)])


def server_container(config: KubeRayConfig) -> Manifest:
    server, port = config.mlflow_server, config.network.mlflow_port
    database = server.database
    probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "periodSeconds": 10}
    return {
        "name": "mlflow",
        "image": server.image or config.image.reference(),
        "imagePullPolicy": config.image.pull_policy,
        "command": [
            "mlflow", "server", "--host", "0.0.0.0", "--port", str(port), "--workers", str(server.workers),
            "--serve-artifacts", "--artifacts-destination", server.artifacts_uri,
            "--allowed-hosts", allowed_hosts(config),
        ],  # fmt: skip
        "env": [
            {
                # mlflow server reads --backend-store-uri from here: the password stays in the Secret.
                "name": "MLFLOW_BACKEND_STORE_URI",
                "valueFrom": {"secretKeyRef": {"name": database.uri_secret, "key": database.uri_secret_key}},
            },
            {"name": "GOOGLE_CLOUD_PROJECT", "value": config.gcp.project},
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 6},
        # The first start migrates the database schema: give it time before liveness counts.
        "startupProbe": {**probe, "failureThreshold": 30},
        "resources": resources(server.resources),
        "securityContext": container_security_context(config),
        "volumeMounts": writable_mounts("/tmp"),
    }


def cloud_sql_proxy(config: KubeRayConfig) -> Manifest:
    """Native sidecar (restartPolicy Always): up before the server starts, stopped after it."""
    database = config.mlflow_server.database
    args = [f"--port={database.port}", "--structured-logs", "--health-check", "--http-address=0.0.0.0"]
    if database.private_ip:
        args.append("--private-ip")
    return {
        "name": "cloud-sql-proxy",
        "image": database.proxy_image,
        "restartPolicy": "Always",
        "args": [*args, database.cloud_sql_instance],
        "startupProbe": {
            "httpGet": {"path": "/startup", "port": 9090}, "periodSeconds": 1, "failureThreshold": 60,
        },  # fmt: skip
        "livenessProbe": {"httpGet": {"path": "/liveness", "port": 9090}, "periodSeconds": 10},
        "resources": resources(database.proxy),
        "securityContext": container_security_context(config),
    }


def deployment(config: KubeRayConfig) -> Manifest:
    names = Names(config)
    server = config.mlflow_server
    labels = {**config.network.mlflow_pod_labels}
    template_labels = {**labels, **metadata(config, "", MLFLOW_WORKLOAD)["labels"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(config, names(MLFLOW_WORKLOAD), MLFLOW_WORKLOAD),
        "spec": {
            "replicas": server.replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": template_labels},
                "spec": {
                    "serviceAccountName": names(MLFLOW_WORKLOAD),
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(config),
                    "initContainers": [cloud_sql_proxy(config)],
                    "containers": [server_container(config)],
                    "volumes": writable_volumes(config, server.resources.memory, "tmp"),
                },
            },
        },
    }


def service(config: KubeRayConfig) -> Manifest:
    port = config.network.mlflow_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(config, SERVICE_NAME, MLFLOW_WORKLOAD),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(config.network.mlflow_pod_labels),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def mlflow_server_manifests(config: KubeRayConfig) -> list[Manifest]:
    """Nothing when ``mlflow_server.enabled`` is false (a server elsewhere: ``network.mlflow_cidrs``)."""
    if not config.mlflow_server.enabled:
        return []
    return [service_account(config), deployment(config), service(config)]
