"""Least privilege in clusters/: RBAC, API tokens, network policies, scratch space, spot timing, image pinning.

Each check reads the manifests back, both as committed in clusters/ and from a fresh render, and
the attacks (a pod reaching another cluster, a worker calling the API server, a tampered hash file,
a spot config that cannot fit the notice) are evaluated against what was rendered.
"""

from __future__ import annotations

import copy
import importlib.metadata
import re
import shutil

import pytest
import yaml
from packaging.requirements import Requirement

from mlray.config import ConfigError, load_config
from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay import dockerfile, rules
from mlray.kuberay.__main__ import main as kuberay_cli
from mlray.kuberay.image_hashes import (
    IMAGE_DIR,
    VARIANTS,
    canonical_name,
    hashed_requirements,
    public_version,
    read_hashed,
    read_lock,
    stale_pins,
)
from mlray.kuberay.access import AUTOSCALER_RULES
from mlray.kuberay.pods import API_TOKEN_DIR, quantity_bytes
from mlray.kuberay.render import RenderInputs, SpotNoticeError, render

from .conftest import CLUSTERS, PROJECT_ROOT
from .netpol import Endpoint, allowed

AREA = "cluster"

SERVE_CONFIG = PROJECT_ROOT / "serve_apps" / "config.yaml"
RAY_KINDS = {"RayCluster", "RayJob", "RayService"}


def documents_of(files: dict[str, str]) -> list[dict]:
    return [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(params=["committed", "fresh"])
def manifests(request, fresh_render) -> list[dict]:
    """Every object, as committed in clusters/ or as rendered now from the configs."""
    if request.param == "committed":
        files = {path.name: path.read_text() for path in sorted(CLUSTERS.glob("*.yaml"))}
    else:
        files = fresh_render
    return documents_of(files)


def of_kind(documents: list[dict], *kinds: str) -> list[dict]:
    return [doc for doc in documents if doc["kind"] in kinds]


def cluster_specs(document: dict) -> list[dict]:
    return [spec for _, spec in rules.cluster_spec_paths(document)]


def ray_pod_templates(document: dict) -> list[tuple[str, dict]]:
    """("head" | "worker", template) of a RayCluster, RayJob or RayService."""
    templates = []
    for spec in cluster_specs(document):
        templates.append(("head", spec["headGroupSpec"]["template"]))
        templates += [("worker", group["template"]) for group in spec["workerGroupSpecs"]]
    return templates


def all_pod_templates(documents: list[dict]) -> list[rules.PodTemplate]:
    return [pod for doc in of_kind(documents, *RAY_KINDS) for pod in rules.pod_templates(doc)]


# --- RBAC and API tokens -------------------------------------------------------------------------


def autoscaling_head_accounts(documents: list[dict]) -> dict[str, str]:
    """ServiceAccount of each head whose pod runs the autoscaler -> the object it belongs to."""
    accounts = {}
    for document in of_kind(documents, *RAY_KINDS):
        for spec in cluster_specs(document):
            if spec.get("enableInTreeAutoscaling"):
                head = spec["headGroupSpec"]["template"]["spec"]
                accounts[head["serviceAccountName"]] = f"{document['kind']}/{document['metadata']['name']}"
    return accounts


@pytest.mark.security
def test_each_role_is_bound_only_to_the_autoscaling_head_that_needs_it(manifests, security_probe):
    needed = autoscaling_head_accounts(manifests)
    roles = {doc["metadata"]["name"]: doc for doc in of_kind(manifests, "Role")}
    bindings = of_kind(manifests, "RoleBinding")
    assert needed and bindings
    bound: dict[str, str] = {}
    for binding in bindings:
        (subject,) = binding["subjects"]  # one workload per Role
        assert subject["kind"] == "ServiceAccount" and subject["name"] in needed, subject
        assert binding["roleRef"]["name"] in roles
        bound[subject["name"]] = binding["roleRef"]["name"]
    assert set(bound) == set(needed)
    assert len(set(bound.values())) == len(bound), "a Role shared by several ServiceAccounts"
    accounts = {doc["metadata"]["name"] for doc in of_kind(manifests, "ServiceAccount")}
    unbound = sorted(accounts - set(bound))
    assert "mlray-job-submitter" in unbound
    security_probe(
        AREA,
        "bind the autoscaler's Role to ServiceAccounts whose pods do not run the autoscaler",
        "each Role bound to exactly one ServiceAccount: the head of an autoscaling cluster",
        f"{len(bound)} Roles, each bound once; never bound: {unbound}",
    )


@pytest.mark.security
def test_no_role_grants_more_than_the_autoscaler_calls(manifests, security_probe):
    needs = {(rule["apiGroups"][0], rule["resources"][0]): set(rule["verbs"]) for rule in AUTOSCALER_RULES}
    # What Ray's autoscaler actually calls (ray/autoscaler/v2/.../kuberay/cloud_provider.py).
    assert needs == {("", "pods"): {"get", "list"}, ("ray.io", "rayclusters"): {"get", "patch"}}
    granted: set[tuple[str, str, str]] = set()
    for role in of_kind(manifests, "Role"):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert (group, resource) in needs, (role["metadata"]["name"], group, resource)
                    assert set(rule["verbs"]) <= needs[(group, resource)], (role["metadata"]["name"], rule)
                    granted |= {(group, resource, verb) for verb in rule["verbs"]}
    (cluster,) = of_kind(manifests, "RayCluster")
    (long_lived,) = [
        r for r in of_kind(manifests, "Role") if r["metadata"]["labels"]["mlray.io/workload"] == "ray"
    ]
    assert long_lived["rules"][1]["resourceNames"] == [cluster["metadata"]["name"]]
    security_probe(
        AREA,
        "look for a Role granting more than get/list pods and get/patch rayclusters (delete, watch, secrets, *)",
        "no rule beyond what the autoscaler calls; the RayCluster's Role names its RayCluster",
        sorted(f"{group or 'core'}/{resource}:{verb}" for group, resource, verb in granted),
    )


@pytest.mark.security
def test_only_the_autoscaler_container_mounts_an_api_token(manifests, security_probe):
    for account in of_kind(manifests, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False, account["metadata"]["name"]
    pods = all_pod_templates(manifests)
    token_mounts = []
    for pod in pods:
        spec = pod.template["spec"]
        assert spec["automountServiceAccountToken"] is False, pod.path
        token_volumes = {
            v["name"]
            for v in spec["volumes"]
            if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))
        }
        for container in spec["containers"]:
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            assert not mounted & token_volumes, (pod.path, container["name"])
            assert all(m["mountPath"] != API_TOKEN_DIR for m in container.get("volumeMounts", []))
        token_mounts.append(len(token_volumes))
    for document in of_kind(manifests, *RAY_KINDS):
        for spec in cluster_specs(document):
            head_volumes = {v["name"] for v in spec["headGroupSpec"]["template"]["spec"]["volumes"]}
            (token_mount,) = [
                m for m in spec["autoscalerOptions"]["volumeMounts"] if m["mountPath"] == API_TOKEN_DIR
            ]
            assert token_mount["name"] in head_volumes and token_mount["readOnly"] is True
    security_probe(
        AREA,
        "look for an API token in the Ray, worker and submitter containers (where user code runs)",
        "automountServiceAccountToken false everywhere; only autoscalerOptions mounts the projected token",
        f"{len(pods)} pod templates, {sum(token_mounts)} token volumes (one per head), 0 containers mount one",
    )


@pytest.mark.security
def test_validate_refuses_a_token_outside_the_autoscaler(grace, security_probe):
    cluster = yaml.safe_load((CLUSTERS / "raycluster.yaml").read_text())
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    head["automountServiceAccountToken"] = True
    head["containers"][0]["volumeMounts"].append({"name": "kube-api-access", "mountPath": API_TOKEN_DIR})
    found = [str(p) for p in rules.check(cluster, "test.yaml", grace)]
    assert any("headGroupSpec.template.spec.automountServiceAccountToken: must be false" in p for p in found)
    assert any(
        "containers[0].volumeMounts: mounts the API token volume 'kube-api-access'" in p for p in found
    )
    security_probe(
        AREA,
        "automount the head's token and mount the token volume into the Ray container",
        "validate reports both, naming the paths",
        [p.split(": ", 2)[-1] for p in found],
    )


# --- network policies ---------------------------------------------------------------------------

GENERATED_SUFFIX = {"RayCluster": "", "RayJob": "-x7k2p", "RayService": "-raycluster-q9w4z"}
APISERVER_PROBE_IP = "172.16.0.2"
INTERNET_IP = "93.184.216.34"
GOOGLE_API_IP = "199.36.153.9"  # inside private.googleapis.com's 199.36.153.8/30


def ray_pods(documents: list[dict], namespace: str) -> dict[str, list[Endpoint]]:
    """The pods KubeRay would create for each Ray object, with the labels KubeRay adds to them."""
    pods: dict[str, list[Endpoint]] = {}
    for document in of_kind(documents, *RAY_KINDS):
        name = document["metadata"]["name"]
        cluster_name = name + GENERATED_SUFFIX[document["kind"]]
        for node_type, template in ray_pod_templates(document):
            labels = {
                **template["metadata"]["labels"],
                "ray.io/cluster": cluster_name,
                "ray.io/node-type": node_type,
                "ray.io/is-ray-node": "yes",
            }
            pods.setdefault(name, []).append(Endpoint(f"{cluster_name}-{node_type}", namespace, labels))
    return pods


@pytest.mark.security
def test_default_deny_for_ingress_and_egress(manifests, kuberay_config, security_probe):
    policies = of_kind(manifests, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1
    namespace = kuberay_config.namespace
    stranger = Endpoint("stranger", namespace, {"app": "something-else"})
    (train_head, *_) = ray_pods(manifests, namespace)["mlray-train"]
    dns = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
    internet = Endpoint("internet", None, ip=INTERNET_IP)
    observed = {
        "stranger->train head:6379": allowed(policies, stranger, train_head, 6379),
        "train head->stranger:8080": allowed(policies, train_head, stranger, 8080),
        "stranger->internet:443": allowed(policies, stranger, internet, 443),
        "stranger->kube-dns:53/UDP": allowed(policies, stranger, dns, 53, "UDP"),
    }
    assert observed == {
        "stranger->train head:6379": False,
        "train head->stranger:8080": False,
        "stranger->internet:443": False,
        "stranger->kube-dns:53/UDP": True,
    }
    security_probe(
        AREA,
        "an unlisted pod in the namespace connects in and out",
        "denied both ways (default-deny ingress and egress); only DNS is open to every pod",
        observed,
    )


@pytest.mark.security
def test_ray_pods_reach_only_their_own_cluster(manifests, kuberay_config, security_probe):
    policies = of_kind(manifests, "NetworkPolicy")
    pods = ray_pods(manifests, kuberay_config.namespace)
    assert len(pods) >= 8
    crossings, inside = [], 0
    for owner, own_pods in pods.items():
        for source in own_pods:
            for target in own_pods:
                for port in (6379, 8076, 10002, 30001):  # GCS, object manager, worker, Serve direct ingress
                    assert allowed(policies, source, target, port), (source.name, target.name, port)
                    inside += 1
            for other, other_pods in pods.items():
                if other != owner:
                    crossings += [
                        (source.name, target.name, port)
                        for target in other_pods
                        for port in (6379, 8265, 10001, 30001)
                        if allowed(policies, source, target, port)
                    ]
    assert crossings == []
    # The long-lived RayCluster's policy pins KubeRay's own ray.io/cluster label.
    (cluster,) = of_kind(manifests, "RayCluster")
    (internal,) = [p for p in policies if p["metadata"]["name"] == "mlray-ray-ray-internal"]
    assert internal["spec"]["podSelector"]["matchLabels"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    assert internal["spec"]["ingress"][0]["from"][0]["podSelector"] == internal["spec"]["podSelector"]
    security_probe(
        AREA,
        "every Ray pod of every cluster connects to every pod of every other cluster (GCS, dashboard, "
        "client, Serve ports)",
        "denied; pods of one cluster reach each other on any port",
        f"{len(crossings)} cross-cluster connections allowed; {inside} same-cluster connections allowed",
    )


@pytest.mark.security
def test_ray_egress_is_limited_to_dns_google_apis_metadata_mlflow_and_features(
    manifests, kuberay_config, security_probe
):
    policies = of_kind(manifests, "NetworkPolicy")
    net = kuberay_config.network
    namespace = kuberay_config.namespace
    head, worker = ray_pods(manifests, namespace)["mlray-train"][:2]
    submitter_labels = of_kind(manifests, "RayJob")[0]["spec"]["submitterPodTemplate"]["metadata"]["labels"]
    submitter = Endpoint("submitter", namespace, submitter_labels)
    targets = {
        "kube-dns:53/UDP": (Endpoint("dns", "kube-system", {"k8s-app": "kube-dns"}), 53, "UDP"),
        "google-apis:443": (Endpoint("googleapis", None, ip=GOOGLE_API_IP), 443, "TCP"),
        "metadata:80": (Endpoint("metadata", None, ip="169.254.169.254"), 80, "TCP"),
        "mlflow:5000": (Endpoint("mlflow", namespace, net.mlflow_pod_labels), net.mlflow_port, "TCP"),
        "mlflow:22": (Endpoint("mlflow", namespace, net.mlflow_pod_labels), 22, "TCP"),
        "feature-server:8666": (
            Endpoint("features", namespace, net.feature_server_pod_labels),
            net.feature_server_port,
            "TCP",
        ),
        "internet:443": (Endpoint("internet", None, ip=INTERNET_IP), 443, "TCP"),
        "api-server:443": (Endpoint("api", None, ip=APISERVER_PROBE_IP), 443, "TCP"),
    }
    observed = {
        who.name: {label: allowed(policies, who, *target) for label, target in targets.items()}
        for who in (head, worker, submitter)
    }
    expected_worker = {
        "kube-dns:53/UDP": True,
        "google-apis:443": True,
        "metadata:80": True,
        "mlflow:5000": True,
        "mlflow:22": False,
        "feature-server:8666": True,
        "internet:443": False,
        "api-server:443": False,
    }
    assert observed[worker.name] == expected_worker
    assert observed[head.name] == {**expected_worker, "api-server:443": True}  # the autoscaler
    assert observed[submitter.name] == {label: label == "kube-dns:53/UDP" for label in targets}
    assert allowed(policies, submitter, head, 8265) and not allowed(policies, submitter, worker, 8265)
    security_probe(
        AREA,
        "Ray head, Ray worker and job submitter connect to DNS, Google APIs, the metadata server, MLflow, "
        "the feature server, the internet and the API server",
        "workers: DNS, Google APIs, metadata, MLflow port, feature server only; heads also the API server; "
        "submitters DNS and the head's dashboard only",
        {who: sorted(label for label, ok in result.items() if ok) for who, result in observed.items()},
    )


def test_mlflow_rule_follows_the_configured_selector_and_external_host(tmp_path):
    """The MLflow allow rule refers to network.mlflow_pod_labels / mlflow_port / mlflow_cidrs."""
    config = load_config(KubeRayConfig, PROJECT_ROOT / "configs" / "kuberay.yaml", environ={})
    config.network.mlflow_pod_labels = {"app.kubernetes.io/name": "tracking"}
    config.network.mlflow_port = 5500
    config.network.mlflow_cidrs = ["10.20.0.5/32"]
    inputs = RenderInputs.from_project(PROJECT_ROOT)
    files = render(RenderInputs(config, inputs.configs_dir, inputs.serve_config_text))
    policies = of_kind(documents_of(files), "NetworkPolicy")
    worker = ray_pods(documents_of(files), config.namespace)["mlray-train"][1]
    tracking = Endpoint("tracking", config.namespace, {"app.kubernetes.io/name": "tracking"})
    old = Endpoint("old", config.namespace, {"app": "mlflow"})
    external = Endpoint("external-mlflow", None, ip="10.20.0.5")
    assert allowed(policies, worker, tracking, 5500)
    assert not allowed(policies, worker, tracking, 5000)
    assert not allowed(policies, worker, old, 5500)
    assert allowed(policies, worker, external, 5500) and not allowed(policies, worker, external, 443)


# --- scratch space, spot timing --------------------------------------------------------------------


@pytest.mark.security
def test_every_empty_dir_has_a_size_limit(manifests, security_probe):
    empty_dirs = []
    for pod in all_pod_templates(manifests):
        spec = pod.template["spec"]
        memory = quantity_bytes(spec["containers"][0]["resources"]["limits"]["memory"])
        for volume in spec["volumes"]:
            if "emptyDir" in volume:
                limit = volume["emptyDir"].get("sizeLimit")
                assert limit, (pod.path, volume["name"])
                if volume["emptyDir"].get("medium") == "Memory":
                    assert quantity_bytes(limit) <= memory, (pod.path, limit)
                empty_dirs.append(f"{volume['name']}={limit}")
    assert len(empty_dirs) >= 30
    security_probe(
        AREA,
        "look for an emptyDir a pod can fill without bound (the node's disk or memory)",
        "every emptyDir has a sizeLimit; /dev/shm's stays within the container's memory limit",
        f"{len(empty_dirs)} emptyDirs, all limited, e.g. {sorted(set(empty_dirs))[:4]}",
    )


def test_validate_refuses_an_unlimited_empty_dir(grace):
    job = yaml.safe_load((CLUSTERS / "rayjob-train.yaml").read_text())
    del job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["volumes"][0]["emptyDir"][
        "sizeLimit"
    ]
    found = [str(p) for p in rules.check(job, "test.yaml", grace)]
    assert any("workerGroupSpecs[0].template.spec.volumes[0].emptyDir: needs a sizeLimit" in p for p in found)


def spot_timings(documents: list[dict]) -> list[tuple[str, int, int, int]]:
    """(object/group, preStop deadline, drain env, terminationGracePeriodSeconds) of every spot group."""
    timings = []
    for document in of_kind(documents, *RAY_KINDS):
        for _, group in rules.worker_groups(document):
            if rules.is_spot(group):
                spec = group["template"]["spec"]
                container = spec["containers"][0]
                env = {e["name"]: e.get("value") for e in container["env"]}
                timings.append(
                    (
                        f"{document['metadata']['name']}/{group['groupName']}",
                        rules.prestop_deadline(container),
                        int(env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"]),
                        spec["terminationGracePeriodSeconds"],
                    )
                )
    return timings


@pytest.mark.security
def test_spot_drain_and_grace_fit_the_spot_notice(manifests, kuberay_config, security_probe):
    notice = kuberay_config.spot.notice_seconds
    timings = spot_timings(manifests)
    assert len({name.split("/")[0] for name, *_ in timings}) == len(of_kind(manifests, *RAY_KINDS))
    for name, deadline, drain_env, grace_period in timings:
        assert deadline is not None and deadline == drain_env, name
        assert deadline + kuberay_config.spot.teardown_margin_seconds <= grace_period <= notice, name
    security_probe(
        AREA,
        "spot pods asking for more time than GKE's preemption notice gives (preStop drain + grace period)",
        f"preStop deadline + teardown margin <= terminationGracePeriodSeconds <= spot.notice_seconds ({notice} s)",
        sorted({(deadline, grace_period) for _, deadline, _, grace_period in timings}),
    )


@pytest.mark.security
def test_render_refuses_spot_timing_beyond_the_notice(tmp_path, capsys, security_probe):
    shutil.copytree(PROJECT_ROOT / "configs", tmp_path / "configs")
    kuberay = tmp_path / "configs" / "kuberay.yaml"
    data = yaml.safe_load(kuberay.read_text())
    data["spot"] = {**data.get("spot", {}), "notice_seconds": 30, "teardown_margin_seconds": 10}
    kuberay.write_text(yaml.safe_dump(data))
    with pytest.raises(SpotNoticeError) as info:
        render(RenderInputs.from_project(tmp_path, serve_config=SERVE_CONFIG))
    message = str(info.value)
    for field in (
        "spot.notice_seconds is 30 s",
        "spot.grace_period of configs/train.yaml = 25 s",
        "spot.teardown_margin_seconds (10 s)",
        "= 35 s",
    ):
        assert field in message, message
    out = tmp_path / "out"
    code = kuberay_cli(["--project", str(tmp_path), "render", "--out", str(out)])
    assert code == 2 and not out.exists()
    error = capsys.readouterr().err
    assert "spot.notice_seconds" in error
    security_probe(
        AREA,
        "render a config whose spot grace (25 s + 10 s teardown) exceeds the 30 s spot notice",
        "refused before anything is written (exit 2), naming the fields",
        f"exit {code}: {error.strip().splitlines()[1].strip()[:160]}",
    )


def test_validate_refuses_a_grace_period_beyond_the_notice(grace, kuberay_config):
    job = yaml.safe_load((CLUSTERS / "rayjob-train.yaml").read_text())
    spot = next(g for _, g in rules.worker_groups(job) if rules.is_spot(g))
    spot["template"]["spec"]["terminationGracePeriodSeconds"] = 35
    found = [str(p) for p in rules.check(job, "test.yaml", grace, kuberay_config.spot.notice_seconds)]
    assert any("35 s exceeds the spot notice (spot.notice_seconds = 30 s)" in p for p in found), found


# --- image pinning ---------------------------------------------------------------------------------

DIGEST = "sha256:" + "4f" * 32
GPU_DIGEST = "sha256:" + "9c" * 32


def images(documents: list[dict]) -> set[str]:
    return {
        container["image"]
        for pod in all_pod_templates(documents)
        for container in pod.template["spec"]["containers"]
    }


@pytest.mark.security
def test_images_are_pulled_by_digest_when_one_is_configured(kuberay_config, security_probe):
    config = kuberay_config.model_copy(deep=True)
    config.image.digest, config.image.gpu_digest = DIGEST, GPU_DIGEST
    inputs = RenderInputs.from_project(PROJECT_ROOT)
    pinned = images(documents_of(render(RenderInputs(config, inputs.configs_dir, inputs.serve_config_text))))
    repository = config.image.repository
    assert pinned == {f"{repository}@{DIGEST}", f"{repository}@{GPU_DIGEST}"}
    tagged = images(documents_of(render(inputs)))
    assert tagged == {
        f"{repository}:{kuberay_config.image.tag}",
        f"{repository}:{kuberay_config.image.gpu_tag}",
    }
    security_probe(
        AREA,
        "move the image tag after deploy (a mutable reference)",
        "with image.digest / gpu_digest set, every container pulls repository@sha256:...",
        sorted(image.split("/")[-1] for image in pinned),
    )


def test_a_malformed_digest_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "kuberay.yaml"
    path.write_text("image: {digest: 'sha256:abc'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(KubeRayConfig, path, environ={})
    assert "image.digest" in str(info.value)


@pytest.mark.security
def test_dockerfile_installs_with_hashes_covering_the_lock(security_probe):
    text = (CLUSTERS / "image" / "Dockerfile").read_text()
    instructions = dockerfile.parse(text)
    args = dockerfile.build_args(instructions)
    runs = [dockerfile.substitute(i.value, args) for i in instructions if i.keyword == "RUN"]
    (install,) = [c for run in runs for c in run.split("&&") if "--require-hashes" in c]
    assert "-r requirements.hashes.txt" in install
    lock_text = (PROJECT_ROOT / "requirements.lock").read_text()
    lock = read_lock(lock_text)
    cpu = read_hashed((PROJECT_ROOT / IMAGE_DIR / VARIANTS["cpu"].file_name).read_text())
    for variant in VARIANTS.values():
        hashed_text = (PROJECT_ROOT / IMAGE_DIR / variant.file_name).read_text()
        assert stale_pins(hashed_text, lock_text, variant.allow_unlocked) == []
    # Everything the project needs at run time, as installed here, is hashed at the locked version.
    needed = runtime_closure("mlray")
    assert needed - set(cpu) == set()
    installed = {name: public_version(importlib.metadata.version(name)) for name in needed}
    assert {name: public_version(cpu[name][0]) for name in needed} == installed
    assert all(lock[name] == version for name, version in installed.items() if name in lock)
    security_probe(
        AREA,
        "install the image's dependencies from an index that serves a different file for a pinned version",
        "pip install --require-hashes from hash files matching requirements.lock (a changed file fails)",
        f"{len(cpu)} hashed pins cover the {len(needed)} packages of mlray's dependency closure",
    )


def runtime_closure(distribution: str) -> set[str]:
    """Canonical names of the installed distributions ``distribution`` needs, transitively (no extras)."""
    seen: set[str] = set()
    pending = [(distribution, frozenset[str]())]
    while pending:
        name, extras = pending.pop()
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            key = canonical_name(requirement.name)
            if key not in seen:
                seen.add(key)
                pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


@pytest.mark.security
def test_a_tampered_hash_file_is_reported(tmp_path, kuberay_config, security_probe):
    context = tmp_path / "context"
    shutil.copytree(PROJECT_ROOT, context, ignore=shutil.ignore_patterns(".venv", ".git", "data", "runs"))
    hashes = context / IMAGE_DIR / VARIANTS["cpu"].file_name
    hashes.write_text(re.sub(r"^pyyaml==\S+", "pyyaml==5.1", hashes.read_text(), flags=re.MULTILINE))
    gpu = context / IMAGE_DIR / VARIANTS["gpu"].file_name
    gpu.write_text(re.sub(r"(?m)^(ray==\S+) \\\n\s+--hash=\S+\n", r"\1\n", gpu.read_text()))
    found = dockerfile.check(context / "clusters/image/Dockerfile", context, kuberay_config.ray_version)
    assert any("requirements.hashes.txt: pyyaml==5.1, but requirements.lock has" in p for p in found), found
    assert any("requirements-gpu.hashes.txt: ray==" in p and "has no --hash=sha256" in p for p in found), (
        found
    )
    security_probe(
        AREA,
        "downgrade a pin in the image's hash file and strip another pin's hash",
        "validate reports both against requirements.lock",
        [p for p in found if "hashes.txt" in p],
    )


def test_hashed_requirements_from_a_pip_report():
    report = {
        "install": [
            {"metadata": {"name": "mlray", "version": "0.1.0"}, "download_info": {"dir_info": {}}},
            {
                "metadata": {"name": "Torch", "version": "2.13.0+cpu"},
                "download_info": {"archive_info": {"hashes": {"sha256": "ab" * 32}}},
            },
            {
                "metadata": {"name": "PyYAML", "version": "6.0.4"},
                "download_info": {"archive_info": {"hash": "sha256=" + "cd" * 32}},
            },
        ]
    }
    text = hashed_requirements(report, {"torch": "2.13.0", "pyyaml": "6.0.4"}, ["header"])
    assert text.splitlines()[0] == "# header"
    assert read_hashed(text) == {"pyyaml": ("6.0.4", ["cd" * 32]), "torch": ("2.13.0+cpu", ["ab" * 32])}
    with pytest.raises(ValueError, match="pyyaml: resolved 6.0.4, requirements.lock has 6.0.3"):
        hashed_requirements(report, {"torch": "2.13.0", "pyyaml": "6.0.3"}, [])
    with pytest.raises(ValueError, match="torch: resolved 2.13.0\\+cpu, requirements.lock has None"):
        hashed_requirements(copy.deepcopy(report), {"pyyaml": "6.0.4"}, [])
