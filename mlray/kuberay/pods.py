"""Pod templates for Ray heads, Ray workers and RayJob submitters, hardened alike.

Every container runs as the image's non-root ``ray`` user with a read-only
root filesystem, no capabilities, no privilege escalation and the runtime's
default seccomp profile. What Ray must write gets an ``emptyDir`` with a
``sizeLimit``: ``/tmp``, Ray's session directory ``/tmp/ray`` (logs, sockets,
spilled objects) and a memory-backed ``/dev/shm`` for the object store.
No pod mounts a Kubernetes API token, except the head's autoscaler sidecar.

Length: the head, worker and submitter templates share every hardening helper here; apart, each
template would import the others' pieces and the one place to check a pod's hardening would be gone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mlray.config.kuberay import KubeRayConfig, PodResources, WorkerGroupSection
from mlray.process_env import PLATFORM_ENV

Manifest = dict[str, Any]

APP_DIR = "/home/ray/app"  # the Dockerfile's WORKDIR: configs/ resolves relative to it
RAY_SESSION_DIR = "/tmp/ray"
GKE_SPOT_SELECTOR = "cloud.google.com/gke-spot"
GKE_ACCELERATOR_SELECTOR = "cloud.google.com/gke-accelerator"
MARKET_LABEL = "ray.io/market-type"
WORKLOAD_LABEL = "mlray.io/workload"
RAY_CLIENT_LABEL = "mlray.io/ray-client"  # pods allowed to reach the head's dashboard and client ports
GPU_RESOURCE = "nvidia.com/gpu"

# (mount path, volume name). "ray-logs" is KubeRay's own name for the /tmp/ray volume:
# with it, KubeRay mounts this same volume into the autoscaler sidecar (whose logs the
# head reads) instead of adding a second, separate emptyDir.
WRITABLE_DIRS: tuple[tuple[str, str], ...] = (
    ("/tmp", "tmp"),
    (RAY_SESSION_DIR, "ray-logs"),
    ("/dev/shm", "dshm"),
)
SHM_VOLUME = "dshm"

# The API token, CA and namespace that Kubernetes would automount, as a projected volume
# that only the autoscaler container mounts (the Ray container runs user code: no token).
API_TOKEN_VOLUME = "kube-api-access"
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# 3607 s is the kubelet's own default: the API server then treats it like the automounted token.
API_TOKEN_EXPIRATION_SECONDS = 3607

QUANTITY_UNITS = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}

HEAD_PORTS = {
    "gcs-server": 6379,
    "dashboard": 8265,
    "client": 10001,
    "as-metrics": 44217,  # autoscaler
    "dash-metrics": 44227,  # dashboard
}


def pod_security_context(config: KubeRayConfig) -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": config.run_as_user,
        "runAsGroup": config.run_as_group,
        "fsGroup": config.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(config: KubeRayConfig) -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": config.run_as_user,
        "runAsGroup": config.run_as_group,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def quantity_bytes(quantity: str) -> float:
    """``"16Gi"`` -> 17179869184.0 (Kubernetes quantity suffixes, as the config model accepts them)."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", quantity)
    if match is None or match[2] not in QUANTITY_UNITS:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    return float(match[1]) * QUANTITY_UNITS[match[2]]


def shm_size_limit(config: KubeRayConfig, memory: str) -> str:
    """The object store's tmpfs: a fraction of the container's memory limit, which it counts against."""
    mebibytes = math.floor(quantity_bytes(memory) * config.scratch.shm_fraction / 2**20)
    return f"{max(mebibytes, 1)}Mi"


def writable_volumes(config: KubeRayConfig, memory: str, *names: str) -> list[Manifest]:
    """emptyDirs for the writable directories (all when ``names`` is empty), each with a sizeLimit."""
    specs = {
        "tmp": {"sizeLimit": config.scratch.tmp},
        "ray-logs": {"sizeLimit": config.scratch.ray_session},
        SHM_VOLUME: {"medium": "Memory", "sizeLimit": shm_size_limit(config, memory)},
    }
    return [
        {"name": name, "emptyDir": specs[name]} for _, name in WRITABLE_DIRS if not names or name in names
    ]


def writable_mounts(*paths: str) -> list[Manifest]:
    """Mounts for the writable directories (all of them when ``paths`` is empty)."""
    return [{"name": name, "mountPath": path} for path, name in WRITABLE_DIRS if not paths or path in paths]


def api_token_volume() -> Manifest:
    """What ``automountServiceAccountToken`` would mount, for one container to opt in to."""
    return {
        "name": API_TOKEN_VOLUME,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": API_TOKEN_EXPIRATION_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                    }
                },
            ],
        },
    }


def resources(spec: PodResources, gpus: int = 0) -> Manifest:
    amounts: dict[str, Any] = {"cpu": spec.cpu, "memory": spec.memory}
    if gpus:
        amounts[GPU_RESOURCE] = gpus
    return {"requests": dict(amounts), "limits": dict(amounts)}


def env_entries(env: Mapping[str, str]) -> list[Manifest]:
    """``env`` as container ``env`` entries."""
    return [{"name": name, "value": value} for name, value in env.items()]


def set_env(entries: list[Manifest], env: Mapping[str, str]) -> None:
    """Set ``env`` in a container's ``env`` entries: an entry of the same name gets the new value, others
    are appended."""
    by_name = {entry["name"]: entry for entry in entries}
    for name, value in env.items():
        if name in by_name:
            by_name[name].pop("valueFrom", None)
            by_name[name]["value"] = value
        else:
            entries.append({"name": name, "value": value})


def ray_env(grace_seconds: float | None = None) -> list[Manifest]:
    env = [
        {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        # The platform's process env (mlray.process_env); a RayJob's runtime env adds its job's part.
        *env_entries(PLATFORM_ENV),
        # The image is read-only: no bytecode caches next to the sources, other caches in /tmp.
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
    ]
    if grace_seconds is not None:
        # Ray 2.60 drains the node itself when `ray start --block` gets SIGTERM; keep that
        # within the pod's grace period too, in case the signal reaches it.
        env.append({"name": "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "value": str(math.ceil(grace_seconds))})
    return env


def drain_prestop(deadline_seconds: float) -> Manifest:
    """``preStop``: tell GCS this node is being preempted, wait for its work to drain."""
    command = ["python", "-m", "mlray.kuberay.drain", "--deadline-seconds", str(math.ceil(deadline_seconds))]
    return {"preStop": {"exec": {"command": command}}}


def ray_container(
    config: KubeRayConfig,
    name: str,
    ports: dict[str, int],
    spec: PodResources,
    gpus: int = 0,
    grace_seconds: float | None = None,
) -> Manifest:
    container: Manifest = {
        "name": name,
        "image": config.image.reference(gpu=gpus > 0),
        "imagePullPolicy": config.image.pull_policy,
        "workingDir": APP_DIR,
        "ports": [{"name": port_name, "containerPort": port} for port_name, port in ports.items()],
        "env": ray_env(grace_seconds),
        "resources": resources(spec, gpus),
        "securityContext": container_security_context(config),
        "volumeMounts": writable_mounts(),
    }
    if grace_seconds is not None:
        container["lifecycle"] = drain_prestop(grace_seconds)
    return container


def pod_template(
    config: KubeRayConfig,
    workload: str,
    containers: list[Manifest],
    service_account: str,
    volumes: list[Manifest],
    *,
    market: str | None = None,
    extra: Manifest | None = None,
) -> Manifest:
    labels = {WORKLOAD_LABEL: workload}
    if market is not None:
        labels[MARKET_LABEL] = market
    spec: Manifest = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(config),
        "containers": containers,
        "volumes": volumes,
        **(extra or {}),
    }
    return {"metadata": {"labels": labels}, "spec": spec}


def head_group(config: KubeRayConfig, workload: str, service_account: str, serve: bool = False) -> Manifest:
    ports = {**HEAD_PORTS, "metrics": config.monitoring.metrics_port}
    if serve:
        ports["serve"] = config.service.serve_port
    container = ray_container(config, "ray-head", ports, config.head)
    # The dashboard embeds Grafana panels and queries Prometheus for its metrics views.
    container["env"] += [
        {"name": "RAY_PROMETHEUS_HOST", "value": config.monitoring.prometheus_url},
        {"name": "RAY_GRAFANA_HOST", "value": config.monitoring.grafana_url},
        {"name": "RAY_GRAFANA_IFRAME_HOST", "value": config.monitoring.grafana_iframe_url},
    ]
    return {
        "rayStartParams": {
            # The head schedules no work: a preempted or busy task can't take the GCS down.
            "num-cpus": "0",
            "dashboard-host": "0.0.0.0",
            "metrics-export-port": str(config.monitoring.metrics_port),
            "ray-client-server-port": str(HEAD_PORTS["client"]),
        },
        # The autoscaler sidecar talks to the Kubernetes API: only it mounts the token volume.
        "template": pod_template(
            config,
            workload,
            [container],
            service_account,
            [*writable_volumes(config, config.head.memory), api_token_volume()],
            market="on-demand",
        ),
    }


def spot_termination_grace(config: KubeRayConfig, checkpoint_grace: float) -> int:
    """KubeRay sets no grace period; spot pods need the checkpoint grace plus Ray's teardown.

    The preStop drain runs inside this period (its deadline is the checkpoint grace), and the
    whole period must end before the VM does: ``spot.notice_seconds`` (checked at render).
    """
    return math.ceil(checkpoint_grace) + config.spot.teardown_margin_seconds


def worker_group(
    config: KubeRayConfig,
    group: WorkerGroupSection,
    workload: str,
    service_account: str,
    checkpoint_grace: float,
    serve: bool = False,
) -> Manifest:
    ports = {"metrics": config.monitoring.metrics_port}
    if serve:
        ports["serve"] = config.service.serve_port
    container = ray_container(
        config, "ray-worker", ports, group, gpus=group.gpus, grace_seconds=checkpoint_grace
    )
    node_selector: dict[str, str] = {}
    tolerations: list[Manifest] = []
    if group.market == "spot":
        node_selector[GKE_SPOT_SELECTOR] = "true"
        tolerations.append(
            {"key": GKE_SPOT_SELECTOR, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        )
    if group.accelerator:
        node_selector[GKE_ACCELERATOR_SELECTOR] = group.accelerator
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    extra: Manifest = {"terminationGracePeriodSeconds": spot_termination_grace(config, checkpoint_grace)}
    if node_selector:
        extra["nodeSelector"] = node_selector
    if tolerations:
        extra["tolerations"] = tolerations
    group_spec: Manifest = {
        "groupName": group.name,
        "replicas": group.replicas,
        "minReplicas": group.min_replicas,
        "maxReplicas": group.max_replicas,
        "idleTimeoutSeconds": config.autoscaler.idle_timeout_seconds,
        # Ray node labels: lets tasks target (or avoid) spot capacity with label selectors.
        "labels": {MARKET_LABEL: group.market},
        "rayStartParams": {"metrics-export-port": str(config.monitoring.metrics_port)},
        "template": pod_template(
            config,
            workload,
            [container],
            service_account,
            writable_volumes(config, group.memory),
            market=group.market,
            extra=extra,
        ),
    }
    return group_spec


def ray_cluster_spec(
    config: KubeRayConfig,
    workload: str,
    service_account: str,
    groups: list[WorkerGroupSection],
    checkpoint_grace: float,
    serve: bool = False,
) -> Manifest:
    autoscaler_context = container_security_context(config)
    return {
        "rayVersion": config.ray_version,
        # Token authentication, as on the local cluster: KubeRay creates the secret and
        # sets RAY_AUTH_MODE/RAY_AUTH_TOKEN in every Ray container.
        "authOptions": {"mode": "token"},
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "version": "v2",
            "upscalingMode": config.autoscaler.upscaling_mode,
            "idleTimeoutSeconds": config.autoscaler.idle_timeout_seconds,
            "imagePullPolicy": config.image.pull_policy,
            "resources": resources(config.autoscaler),
            "securityContext": autoscaler_context,
            # The sidecar runs read-only too: give it the head's /tmp (KubeRay adds /tmp/ray),
            # and the API token that no other container of the pod mounts.
            "volumeMounts": [
                *writable_mounts("/tmp"),
                {"name": API_TOKEN_VOLUME, "mountPath": API_TOKEN_DIR, "readOnly": True},
            ],
        },
        "headGroupSpec": head_group(config, workload, service_account, serve=serve),
        "workerGroupSpecs": [
            worker_group(config, group, workload, service_account, checkpoint_grace, serve=serve)
            for group in groups
        ],
    }


def submitter_template(config: KubeRayConfig, workload: str, service_account: str) -> Manifest:
    """The pod that runs ``ray job submit``; KubeRay fills in the command."""
    container = {
        "name": "ray-job-submitter",
        "image": config.image.reference(),
        "imagePullPolicy": config.image.pull_policy,
        "workingDir": APP_DIR,
        "env": env_entries(PLATFORM_ENV),
        "resources": resources(config.jobs.submitter),
        "securityContext": container_security_context(config),
        "volumeMounts": writable_mounts("/tmp"),
    }
    template = pod_template(
        config,
        workload,
        [container],
        service_account,
        writable_volumes(config, config.jobs.submitter.memory, "tmp"),
        extra={"restartPolicy": "Never"},
    )
    template["metadata"]["labels"][RAY_CLIENT_LABEL] = "true"
    return template
