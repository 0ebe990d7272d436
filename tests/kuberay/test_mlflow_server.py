"""clusters/mlflow.yaml: the tracking server the RayJobs' tracking URI names, reachable only from Ray pods."""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from mlray.config.kuberay import KubeRayConfig
from mlray.kuberay.manifests import WORKLOAD_IDENTITY_ANNOTATION, mlflow_uri
from mlray.kuberay.mlflow_server import mlflow_server_manifests
from mlray.kuberay.render import RenderInputs, render
from tests.kuberay.conftest import PROJECT_ROOT
from tests.kuberay.netpol import Endpoint, allowed


def by_kind(rendered: dict[str, str]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(rendered["mlflow.yaml"]) if doc}


def test_jobs_tracking_uri_resolves_to_the_server_pods(fresh_render, kuberay_config):
    objects = by_kind(fresh_render)
    uri = urlsplit(mlflow_uri(kuberay_config))
    service, deployment = objects["Service"], objects["Deployment"]
    assert uri.hostname == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert [p["port"] for p in service["spec"]["ports"]] == [uri.port]
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["metadata"]["labels"]["app"] == "mlflow"
    server = pod["spec"]["containers"][0]
    assert [p["containerPort"] for p in server["ports"]] == [uri.port]
    assert str(uri.port) in server["command"] and "--serve-artifacts" in server["command"]
    allowed_hosts = server["command"][server["command"].index("--allowed-hosts") + 1].split(",")
    assert uri.netloc in allowed_hosts  # mlflow's security middleware accepts the Host header jobs send


def test_database_credentials_come_from_a_secret_and_identity_from_workload_identity(fresh_render, kuberay_config):
    objects = by_kind(fresh_render)
    spec = objects["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    database = kuberay_config.mlflow_server.database
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": database.uri_secret, "key": database.uri_secret_key,
    }  # fmt: skip
    assert "postgresql://" not in fresh_render["mlflow.yaml"]  # no URI, no password in the manifests
    proxy = spec["initContainers"][0]
    assert proxy["restartPolicy"] == "Always"  # a native sidecar: up before the server, down after it
    assert proxy["args"][-1] == database.cloud_sql_instance and f"--port={database.port}" in proxy["args"]
    account = objects["ServiceAccount"]
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"][WORKLOAD_IDENTITY_ANNOTATION].startswith(account["metadata"]["name"])
    assert spec["automountServiceAccountToken"] is False and account["automountServiceAccountToken"] is False


def test_only_ray_pods_of_the_namespace_reach_the_server(fresh_render, kuberay_config):
    policies = [doc for doc in yaml.safe_load_all(fresh_render["networkpolicies.yaml"]) if doc]
    namespace, port = kuberay_config.namespace, kuberay_config.network.mlflow_port
    pod_labels = by_kind(fresh_render)["Deployment"]["spec"]["template"]["metadata"]["labels"]
    server = Endpoint("mlflow", namespace, pod_labels)
    ray_worker = Endpoint("worker", namespace, {"ray.io/is-ray-node": "yes", "ray.io/node-type": "worker"})
    other_pod = Endpoint("other", namespace, {"app": "something-else"})
    foreign_ray = Endpoint("foreign", "elsewhere", {"ray.io/is-ray-node": "yes"})
    assert allowed(policies, ray_worker, server, port)
    assert not allowed(policies, other_pod, server, port)
    assert not allowed(policies, foreign_ray, server, port)
    assert not allowed(policies, ray_worker, server, port + 1)


def test_disabled_server_renders_no_manifests():
    config = KubeRayConfig(mlflow_server={"enabled": False})
    assert mlflow_server_manifests(config) == []
    inputs = RenderInputs.from_project(PROJECT_ROOT)
    assert "mlflow.yaml" not in render(RenderInputs(config, inputs.configs_dir, inputs.serve_config_text))


def test_the_server_reaches_its_cloud_sql_instance_and_nothing_else_on_database_ports(kuberay_config):
    from mlray.kuberay.network import network_policies

    config = kuberay_config.model_copy(deep=True)
    config.mlflow_server.database.instance_cidrs = ["10.20.0.0/24"]
    config.mlflow_server.database.instance_ports = [3307, 5432]
    policies = network_policies(config, [])
    namespace = config.namespace
    server = Endpoint("mlflow", namespace, dict(config.network.mlflow_pod_labels))
    instance = Endpoint("cloud-sql", None, ip="10.20.0.5")
    elsewhere = Endpoint("elsewhere", None, ip="10.99.0.5")
    ray_worker = Endpoint("worker", namespace, {"ray.io/is-ray-node": "yes", "ray.io/node-type": "worker"})
    assert allowed(policies, server, instance, 3307)  # the Cloud SQL Auth Proxy's connection
    assert allowed(policies, server, instance, 5432)  # configured: a direct private-IP client
    assert not allowed(policies, server, instance, 22)
    assert not allowed(policies, server, elsewhere, 3307)
    assert not allowed(policies, ray_worker, instance, 3307)  # only the server's pods


def test_the_image_the_server_runs_carries_the_postgresql_driver():
    import importlib.metadata
    import re

    import sqlalchemy

    # The Secret's backend store URI, postgresql://..., loads this driver (SQLAlchemy 2.1: psycopg 3).
    driver = sqlalchemy.create_engine("postgresql://mlflow@127.0.0.1:5432/mlflow").dialect.driver
    assert driver == "psycopg"
    lock = (PROJECT_ROOT / "requirements.lock").read_text().split()
    pins = dict(line.split("==") for line in lock if "==" in line)
    declared = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert re.search(rf'"psycopg\[binary\]=={re.escape(pins["psycopg"])}"', declared)
    for name in ("psycopg", "psycopg-binary"):  # the C build: no libpq needed in the image
        assert pins[name] == importlib.metadata.version(name)
        for variant in ("requirements.hashes.txt", "requirements-gpu.hashes.txt"):
            hashed = (PROJECT_ROOT / "clusters/image" / variant).read_text()
            pin = re.escape(f"{name}=={pins[name]}")
            assert re.search(rf"^{pin} \\\n    --hash=sha256:[0-9a-f]{{64}}$", hashed, re.MULTILINE), variant
