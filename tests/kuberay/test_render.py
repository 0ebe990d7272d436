"""The committed manifests are a fresh render of the configs, and carry the configs' numbers."""

from __future__ import annotations

import math
import shutil

import pytest
import yaml

from mlray.kuberay.manifests import job_overrides
from mlray.kuberay.render import EntrypointOverridesError, RenderInputs, is_generated, render, write
from mlray.kuberay.rules import is_spot, worker_groups
from mlray.config.jobs import cluster_jobs
from mlray.kuberay.workloads import all_job_settings, load_job_config
from mlray.process_env import process_env

from .conftest import CLUSTERS, PROJECT_ROOT

RERENDER = "re-render: python -m mlray.kuberay render --out clusters/"


def only_document(text: str) -> dict:
    (document,) = [d for d in yaml.safe_load_all(text) if d is not None]
    return document


def test_committed_manifests_match_a_fresh_render(fresh_render):
    committed = {
        str(path.relative_to(CLUSTERS)) for path in [*CLUSTERS.glob("*.yaml"), *CLUSTERS.glob("monitoring/*.yaml")]
    }
    assert committed == set(fresh_render), RERENDER
    for name, text in fresh_render.items():
        assert (CLUSTERS / name).read_text() == text, (
            f"clusters/{name} differs from a fresh render; {RERENDER}"
        )


def test_render_writes_files_and_removes_stale_generated_ones(tmp_path, fresh_render):
    (tmp_path / "rayjob-gone.yaml").write_text(next(iter(fresh_render.values())))
    (tmp_path / "hand-written.yaml").write_text("kind: ConfigMap\n")
    write(fresh_render, tmp_path)
    assert not (tmp_path / "rayjob-gone.yaml").exists()
    assert (tmp_path / "hand-written.yaml").exists()
    assert all(is_generated(tmp_path / name) for name in fresh_render)


@pytest.mark.parametrize(
    "settings", all_job_settings(PROJECT_ROOT / "configs"), ids=lambda s: s.job.name
)
def test_rayjob_deadline_and_grace_follow_the_job_config(settings, fresh_render, kuberay_config):
    job = only_document(fresh_render[f"rayjob-{settings.job.name}.yaml"])
    spec = job["spec"]
    assert spec["entrypoint"].startswith(
        f"python -m jobs {settings.job.name} --config configs/{settings.job.rayjob_config_file}"
    )
    if settings.total_runtime is None:
        assert "activeDeadlineSeconds" not in spec
    else:
        margin = kuberay_config.jobs.deadline_margin_seconds
        assert spec["activeDeadlineSeconds"] == math.ceil(settings.total_runtime) + margin
    assert spec["shutdownAfterJobFinishes"] is True
    if settings.has_storage:  # one root for the whole pipeline: each job reads what the one before wrote
        assert f"--set storage.uri={kuberay_config.gcp.checkpoint_uri} " in spec["entrypoint"] + " "
    # The runtime env carries the job's process env, from its config with the entrypoint's overrides
    # (mlray.process_env): Ray Train's preemption poll interval only for training, from
    # spot.drain_poll_interval_s.
    env_vars = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    job_config, _ = load_job_config(settings.job, PROJECT_ROOT / "configs",
                                    job_overrides(kuberay_config, settings))
    assert {name: env_vars.get(name) for name in process_env(settings.job.name, job_config)} == (
        process_env(settings.job.name, job_config))
    if settings.job.name == "train":
        assert env_vars["RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S"] == str(job_config.spot.drain_poll_interval_s)
    else:
        assert "RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S" not in env_vars
    spot_groups = [group for _, group in worker_groups(job) if is_spot(group)]
    assert spot_groups
    for group in spot_groups:
        assert group["template"]["spec"]["terminationGracePeriodSeconds"] >= settings.grace_period


def test_job_config_changes_reach_the_manifests(tmp_path):
    """The renderer reads the job configs: a new total_runtime and grace period show up in the RayJob."""
    shutil.copytree(PROJECT_ROOT / "configs", tmp_path / "configs")
    training = tmp_path / "configs" / "train.yaml"
    data = yaml.safe_load(training.read_text())
    data["timeouts"] = {**data.get("timeouts", {}), "total_runtime": 7200.5}
    data["spot"] = {**data.get("spot", {}), "grace_period": 90}
    training.write_text(yaml.safe_dump(data))
    # A 90 s grace only fits a longer spot notice (GKE's opt-in 120 s).
    kuberay = tmp_path / "configs" / "kuberay.yaml"
    cluster_config = yaml.safe_load(kuberay.read_text())
    cluster_config["spot"] = {**cluster_config.get("spot", {}), "notice_seconds": 120}
    kuberay.write_text(yaml.safe_dump(cluster_config))
    files = render(
        RenderInputs.from_project(tmp_path, serve_config=PROJECT_ROOT / "serve_apps" / "config.yaml")
    )
    job = only_document(files["rayjob-train.yaml"])
    assert job["spec"]["activeDeadlineSeconds"] == 7201 + 900
    for _, group in worker_groups(job):
        if is_spot(group):
            assert group["template"]["spec"]["terminationGracePeriodSeconds"] >= 90
    cluster = only_document(files["raycluster.yaml"])  # the shared cluster takes the longest grace
    assert all(
        g["template"]["spec"]["terminationGracePeriodSeconds"] >= 90
        for _, g in worker_groups(cluster)
        if is_spot(g)
    )


def test_rayjob_carries_the_drain_poll_interval_of_its_job_config(tmp_path):
    """RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S of the train RayJob is the train config's
    spot.drain_poll_interval_s (after the entrypoint's overrides), never a fixed number."""
    shutil.copytree(PROJECT_ROOT / "configs", tmp_path / "configs")
    training = tmp_path / "configs" / "train.yaml"
    data = yaml.safe_load(training.read_text())
    data["spot"] = {**data.get("spot", {}), "drain_poll_interval_s": 2.5}
    training.write_text(yaml.safe_dump(data))

    def poll_interval(files: dict[str, str]) -> str:
        spec = only_document(files["rayjob-train.yaml"])["spec"]
        return yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["RAY_TRAIN_PREEMPTION_POLL_INTERVAL_S"]

    serve_config = PROJECT_ROOT / "serve_apps" / "config.yaml"
    assert poll_interval(render(RenderInputs.from_project(tmp_path, serve_config=serve_config))) == "2.5"
    kuberay = tmp_path / "configs" / "kuberay.yaml"
    cluster_config = yaml.safe_load(kuberay.read_text())
    cluster_config.setdefault("jobs", {})["overrides"] = {"train": ["spot.drain_poll_interval_s=4"]}
    kuberay.write_text(yaml.safe_dump(cluster_config))
    assert poll_interval(render(RenderInputs.from_project(tmp_path, serve_config=serve_config))) == "4.0"


def test_rayservice_serve_config_is_exactly_the_serve_apps_file(tmp_path, fresh_render):
    serve_file = PROJECT_ROOT / "serve_apps" / "config.yaml"
    if not serve_file.is_file():
        pytest.skip("serve_apps/config.yaml not written yet")
    from ray.serve.schema import ServeDeploySchema

    service = only_document(fresh_render["rayservice.yaml"])
    assert service["spec"]["serveConfigV2"] == serve_file.read_text()
    committed = only_document((CLUSTERS / "rayservice.yaml").read_text())
    assert committed["spec"]["serveConfigV2"] == serve_file.read_text()
    ServeDeploySchema.model_validate(yaml.safe_load(committed["spec"]["serveConfigV2"]))


def test_rayservice_renders_from_any_serve_config_and_parses_with_serve_schema(tmp_path):
    from ray.serve.schema import ServeDeploySchema

    text = (
        "# a comment survives\n"
        "applications:\n  - name: demo\n    route_prefix: /\n    import_path: serve_apps:build\n"
    )
    serve_file = tmp_path / "config.yaml"
    serve_file.write_text(text)
    files = render(RenderInputs.from_project(PROJECT_ROOT, serve_config=serve_file))
    service = only_document(files["rayservice.yaml"])
    assert service["spec"]["serveConfigV2"] == text
    parsed = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    assert parsed.applications[0].name == "demo"


def test_rayservice_containers_carry_the_serving_env_and_other_clusters_do_not(fresh_render):
    """Ray's HAProxy mode etc. (mlray/serve/cluster_env.py) on every RayService Ray container, where
    ``ray start`` reads them; the RayCluster and the RayJobs do not serve and keep Ray's defaults."""
    from mlray.serve.cluster_env import HAPROXY_FLAG, SERVING_ENV

    def ray_containers(document: dict) -> list[dict]:
        spec = document["spec"]
        spec = spec.get("rayClusterConfig") or spec.get("rayClusterSpec") or spec
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        return [group["template"]["spec"]["containers"][0] for group in groups]

    service = only_document(fresh_render["rayservice.yaml"])
    containers = ray_containers(service)
    assert len(containers) >= 2
    for container in containers:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {name: env.get(name) for name in SERVING_ENV} == SERVING_ENV, container["name"]
    assert SERVING_ENV[HAPROXY_FLAG] == "1"
    others = [name for name in fresh_render if name == "raycluster.yaml" or name.startswith("rayjob-")]
    for name in others:
        for container in ray_containers(only_document(fresh_render[name])):
            assert HAPROXY_FLAG not in {e["name"] for e in container["env"]}, name


def test_without_serve_config_no_rayservice_is_rendered(tmp_path):
    files = render(RenderInputs.from_project(PROJECT_ROOT, serve_config=tmp_path / "missing.yaml"))
    assert "rayservice.yaml" not in files
    assert {f"rayjob-{job.name}.yaml" for job in cluster_jobs()} <= set(files)


def test_raycluster_shape(fresh_render, kuberay_config):
    cluster = only_document(fresh_render["raycluster.yaml"])
    spec = cluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["version"] == "v2"
    assert spec["rayVersion"] == kuberay_config.ray_version
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    head_ports = {p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert head_ports["client"] == 10001 and head_ports["dashboard"] == 8265 and "metrics" in head_ports
    # KubeRay shares the head's /tmp/ray with the autoscaler sidecar only if the volume has its name.
    head_mounts = {
        m["mountPath"]: m["name"] for m in head["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert head_mounts["/tmp/ray"] == "ray-logs"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert groups["cpu"]["template"]["spec"].get("nodeSelector", {}).get("cloud.google.com/gke-spot") is None
    for name in ("cpu-spot", "gpu-spot"):
        pod = groups[name]["template"]
        assert pod["spec"]["nodeSelector"]["cloud.google.com/gke-spot"] == "true"
        assert pod["metadata"]["labels"]["ray.io/market-type"] == "spot"
        assert groups[name]["labels"]["ray.io/market-type"] == "spot"
        assert "preStop" in pod["spec"]["containers"][0]["lifecycle"]
    gpu_pod = groups["gpu-spot"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu_pod["tolerations"]
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu_pod["containers"][0]["image"].endswith(kuberay_config.image.gpu_tag)


def test_ray_version_matches_the_installed_ray(kuberay_config):
    import ray

    assert kuberay_config.ray_version == ray.__version__


def test_workload_identity_and_least_privilege(fresh_render, kuberay_config):
    documents = [d for d in yaml.safe_load_all(fresh_render["rbac.yaml"]) if d]
    accounts = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ServiceAccount"}
    for job in cluster_jobs():
        account = accounts[f"mlray-{job.name}"]
        assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
            f"@{kuberay_config.gcp.project}.iam.gserviceaccount.com"
        )
        assert account["automountServiceAccountToken"] is False
    roles = [d for d in documents if d["kind"] == "Role"]
    assert roles
    for role in roles:
        verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
        assert verbs <= {"get", "list", "watch", "patch"}
        assert all("*" not in rule["resources"] for rule in role["rules"])


def test_rayservice_pods_mount_prediction_and_admin_keys_where_the_app_reads_them(fresh_render):
    """Both key files of configs/inference.yaml's auth section come from Secrets: without the admin
    keys, every rollout change on the cluster would be refused."""
    from mlray.config.inference import InferenceConfig
    from mlray.config.loader import load_config

    auth = load_config(InferenceConfig, PROJECT_ROOT / "configs" / "inference.yaml", environ={}).auth
    service = only_document(fresh_render["rayservice.yaml"])
    spec = service["spec"]["rayClusterConfig"]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted = {}
        for mount in pod["containers"][0]["volumeMounts"]:
            for source in volumes[mount["name"]].get("projected", {}).get("sources", []):
                for item in source["secret"]["items"]:
                    mounted[f"{mount['mountPath']}/{item['path']}"] = source["secret"]["name"]
        assert mounted.get(auth.api_keys_file, "").endswith("serve-api-keys")
        assert mounted.get(auth.admin_keys_file, "").endswith("serve-admin-keys")


def test_render_refuses_an_entrypoint_override_its_job_would_refuse(tmp_path):
    """A `jobs.overrides` entry naming no config field (or no job) fails the render, naming job and field."""
    shutil.copytree(PROJECT_ROOT / "configs", tmp_path / "configs")
    kuberay = tmp_path / "configs" / "kuberay.yaml"
    data = yaml.safe_load(kuberay.read_text())
    overrides = {"optimize": ["problem.no_such_field=1"], "trian": []}
    data["jobs"] = {**data.get("jobs", {}), "overrides": overrides}
    kuberay.write_text(yaml.safe_dump(data))
    with pytest.raises(EntrypointOverridesError) as info:
        render(RenderInputs.from_project(tmp_path))
    message = str(info.value)
    assert "jobs.overrides.trian: no such job" in message
    assert "the optimize RayJob's entrypoint overrides" in message and "problem.no_such_field" in message
