"""Rules no schema expresses: KubeRay's own constraints and the platform's security baseline.

Each rule takes one manifest and returns ``Problem``s naming the offending path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from mlray.kuberay.pods import GKE_SPOT_SELECTOR, MARKET_LABEL, RAY_SESSION_DIR
from mlray.kuberay.problems import Problem, format_path, object_name

Manifest = dict[str, Any]
Path_ = tuple[Any, ...]

DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# KubeRay derives Service and Pod names from these, so they must stay shorter than 63.
NAME_LIMITS = {"RayCluster": 53, "RayJob": 47, "RayService": 47}
DEFAULT_NAME_LIMIT = 63


@dataclass(frozen=True)
class PodTemplate:
    path: Path_
    template: Manifest
    ray_node: bool  # a Ray head or worker (needs Ray's session dir), not a submitter


def cluster_spec_paths(document: Manifest) -> Iterator[tuple[Path_, Manifest]]:
    spec = document.get("spec") or {}
    kind = document.get("kind")
    if kind == "RayCluster":
        yield ("spec",), spec
    elif kind == "RayJob" and isinstance(spec.get("rayClusterSpec"), dict):
        yield ("spec", "rayClusterSpec"), spec["rayClusterSpec"]
    elif kind == "RayService" and isinstance(spec.get("rayClusterConfig"), dict):
        yield ("spec", "rayClusterConfig"), spec["rayClusterConfig"]


def worker_groups(document: Manifest) -> Iterator[tuple[Path_, Manifest]]:
    for path, cluster in cluster_spec_paths(document):
        for index, group in enumerate(cluster.get("workerGroupSpecs") or []):
            if isinstance(group, dict):
                yield (*path, "workerGroupSpecs", index), group


def pod_templates(document: Manifest) -> Iterator[PodTemplate]:
    for path, cluster in cluster_spec_paths(document):
        head = cluster.get("headGroupSpec") or {}
        if isinstance(head.get("template"), dict):
            yield PodTemplate((*path, "headGroupSpec", "template"), head["template"], True)
    for path, group in worker_groups(document):
        if isinstance(group.get("template"), dict):
            yield PodTemplate((*path, "template"), group["template"], True)
    submitter = (
        (document.get("spec") or {}).get("submitterPodTemplate") if document.get("kind") == "RayJob" else None
    )
    if isinstance(submitter, dict):
        yield PodTemplate(("spec", "submitterPodTemplate"), submitter, False)


def check_name(document: Manifest) -> Iterator[tuple[Path_, str]]:
    name = (document.get("metadata") or {}).get("name")
    limit = NAME_LIMITS.get(document.get("kind", ""), DEFAULT_NAME_LIMIT)
    if not isinstance(name, str) or not DNS_1035_LABEL.match(name):
        yield ("metadata", "name"), f"{name!r} is not a DNS-1035 label ([a-z]([-a-z0-9]*[a-z0-9])?)"
    elif len(name) > limit:
        yield (
            ("metadata", "name"),
            f"{name!r} has {len(name)} characters; a {document.get('kind')} allows {limit}",
        )


def check_job_lifecycle(document: Manifest) -> Iterator[tuple[Path_, str]]:
    spec = document.get("spec") or {}
    if document.get("kind") == "RayJob" and "ttlSecondsAfterFinished" in spec:
        if spec.get("shutdownAfterJobFinishes") is not True:
            yield ("spec", "ttlSecondsAfterFinished"), "only takes effect with shutdownAfterJobFinishes: true"


def check_replicas(document: Manifest) -> Iterator[tuple[Path_, str]]:
    for path, group in worker_groups(document):
        low, high = group.get("minReplicas", 0), group.get("maxReplicas")
        replicas = group.get("replicas", low)
        if isinstance(high, int) and isinstance(low, int) and isinstance(replicas, int):
            if not low <= replicas <= high:
                yield (
                    path,
                    f"expected minReplicas <= replicas <= maxReplicas, got {low} <= {replicas} <= {high}",
                )


def _container_problems(context: Manifest, pod_context: Manifest) -> Iterator[tuple[Path_, str]]:
    """Problems of one container's effective security context (container settings win)."""

    def effective(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    if effective("runAsNonRoot") is not True:
        yield ("runAsNonRoot",), "must be true (pods run as non-root)"
    if effective("runAsUser") == 0:
        yield ("runAsUser",), "must not be 0 (root)"
    if context.get("allowPrivilegeEscalation") is not False:
        yield ("allowPrivilegeEscalation",), "must be false"
    if context.get("privileged") is True:
        yield ("privileged",), "must not be true"
    if context.get("readOnlyRootFilesystem") is not True:
        yield ("readOnlyRootFilesystem",), "must be true"
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        yield ("capabilities", "drop"), "must drop ALL capabilities"
    if capabilities.get("add"):
        yield ("capabilities", "add"), "must not add capabilities"
    seccomp = (effective("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        yield ("seccompProfile", "type"), f"must be RuntimeDefault, got {seccomp!r}"


def _token_volumes(spec: Manifest) -> set[str]:
    """Volumes that project a ServiceAccount token."""
    return {
        volume.get("name")
        for volume in spec.get("volumes") or []
        if any(
            "serviceAccountToken" in source for source in (volume.get("projected") or {}).get("sources") or []
        )
    }


def check_volumes_and_tokens(document: Manifest) -> Iterator[tuple[Path_, str]]:
    """Every emptyDir has a sizeLimit; no pod automounts an API token; only the autoscaler mounts one."""
    for pod in pod_templates(document):
        spec = pod.template.get("spec") or {}
        for index, volume in enumerate(spec.get("volumes") or []):
            if "emptyDir" in volume and not (volume["emptyDir"] or {}).get("sizeLimit"):
                yield (*pod.path, "spec", "volumes", index, "emptyDir"), "needs a sizeLimit"
        if spec.get("automountServiceAccountToken") is not False:
            yield (
                (*pod.path, "spec", "automountServiceAccountToken"),
                "must be false (only the autoscaler sidecar mounts a token, through autoscalerOptions)",
            )
        tokens = _token_volumes(spec)
        for field in ("containers", "initContainers"):
            for index, container in enumerate(spec.get(field) or []):
                for mount in container.get("volumeMounts") or []:
                    if mount.get("name") in tokens:
                        yield (
                            (*pod.path, "spec", field, index, "volumeMounts"),
                            f"mounts the API token volume {mount.get('name')!r}: only the autoscaler may",
                        )


def check_security(document: Manifest) -> Iterator[tuple[Path_, str]]:
    for pod in pod_templates(document):
        spec = pod.template.get("spec") or {}
        pod_context = spec.get("securityContext") or {}
        empty_dirs = {
            v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict) and "emptyDir" in v
        }
        writable_dirs = ["/tmp", RAY_SESSION_DIR] if pod.ray_node else ["/tmp"]
        for field in ("containers", "initContainers"):
            for index, container in enumerate(spec.get(field) or []):
                base = (*pod.path, "spec", field, index)
                context = container.get("securityContext") or {}
                for sub_path, message in _container_problems(context, pod_context):
                    yield (*base, "securityContext", *sub_path), message
                mounts = {m.get("mountPath"): m.get("name") for m in container.get("volumeMounts") or []}
                for directory in writable_dirs:
                    if mounts.get(directory) not in empty_dirs:
                        yield (
                            (*base, "volumeMounts"),
                            f"needs a writable emptyDir at {directory} (root fs is read-only)",
                        )
    for path, cluster in cluster_spec_paths(document):
        options = cluster.get("autoscalerOptions")
        if cluster.get("enableInTreeAutoscaling") and isinstance(options, dict):
            for sub_path, message in _container_problems(options.get("securityContext") or {}, {}):
                yield (*path, "autoscalerOptions", "securityContext", *sub_path), message


def is_spot(group: Manifest) -> bool:
    spec = (group.get("template") or {}).get("spec") or {}
    labels = {
        **(group.get("labels") or {}),
        **((group.get("template") or {}).get("metadata") or {}).get("labels", {}),
    }
    return (spec.get("nodeSelector") or {}).get(GKE_SPOT_SELECTOR) == "true" or labels.get(
        MARKET_LABEL
    ) == "spot"


def prestop_deadline(container: Manifest) -> int | None:
    """``--deadline-seconds N`` of the drain hook (``mlray.kuberay.drain``), if that is the preStop."""
    command = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get(
        "command"
    ) or []
    if "--deadline-seconds" in command[:-1]:
        value = command[command.index("--deadline-seconds") + 1]
        return int(value) if str(value).isdigit() else None
    return None


def check_spot_grace(
    document: Manifest, checkpoint_grace: float, spot_notice: float | None = None
) -> Iterator[tuple[Path_, str]]:
    for path, group in worker_groups(document):
        if not is_spot(group):
            continue
        spec = (group.get("template") or {}).get("spec") or {}
        grace = spec.get("terminationGracePeriodSeconds")
        grace_path = (*path, "template", "spec", "terminationGracePeriodSeconds")
        if not isinstance(grace, int) or grace < checkpoint_grace:
            yield (
                grace_path,
                f"spot group needs at least the checkpoint grace period ({checkpoint_grace:g} s), got {grace!r}",
            )
        elif spot_notice is not None and grace > spot_notice:
            yield grace_path, f"{grace} s exceeds the spot notice (spot.notice_seconds = {spot_notice:g} s)"
        for index, container in enumerate(spec.get("containers") or []):
            container_path = (*path, "template", "spec", "containers", index, "lifecycle")
            if not ((container.get("lifecycle") or {}).get("preStop")):
                yield container_path, "spot group containers need a preStop hook that drains the Ray node"
                continue
            deadline = prestop_deadline(container)
            if deadline is not None and isinstance(grace, int) and deadline >= grace:
                yield (
                    (*container_path, "preStop"),
                    f"drain deadline {deadline} s leaves no time for Ray's teardown within "
                    f"terminationGracePeriodSeconds ({grace} s)",
                )


def check_serve_config(document: Manifest) -> Iterator[tuple[Path_, str]]:
    if document.get("kind") != "RayService":
        return
    text = (document.get("spec") or {}).get("serveConfigV2")
    path = ("spec", "serveConfigV2")
    if not isinstance(text, str):
        yield path, "must be the text of a Serve config (serve_apps/config.yaml)"
        return
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    try:
        ServeDeploySchema.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        yield path, f"not a valid Serve config: {exc}"


def check(
    document: Any,
    source: str,
    checkpoint_grace: Callable[[Manifest], float],
    spot_notice: float | None = None,
) -> list[Problem]:
    """Every rule on one manifest; ``checkpoint_grace(document)`` gives its spot groups' minimum and
    ``spot_notice`` (spot.notice_seconds) their maximum."""
    if not isinstance(document, dict):
        return [Problem(source, object_name(document), "", "not a Kubernetes object")]
    findings = [
        *check_name(document),
        *check_job_lifecycle(document),
        *check_replicas(document),
        *check_security(document),
        *check_volumes_and_tokens(document),
        *check_serve_config(document),
    ]
    if any(True for _ in worker_groups(document)):
        findings += check_spot_grace(document, checkpoint_grace(document), spot_notice)
    return [Problem(source, object_name(document), format_path(path), message) for path, message in findings]
