"""Every manifest passes the CRD/Kubernetes schemas and mlray's rules; broken ones fail naming the path."""

from __future__ import annotations

import copy
import subprocess
import sys
import functools

import pytest
import yaml

from mlray.kuberay.__main__ import main as kuberay_cli
from mlray.kuberay.render import load_documents
from mlray.kuberay.schemas import strict
from mlray.kuberay.validate import validate_documents

from .conftest import CLUSTERS, PROJECT_ROOT


@functools.cache
def _committed() -> tuple[tuple[str, dict], ...]:
    return tuple((path.name, doc) for path, doc in load_documents(sorted(CLUSTERS.glob("*.yaml"))))


def committed() -> list[tuple[str, dict]]:
    return copy.deepcopy(list(_committed()))


def document(kind: str) -> dict:
    return copy.deepcopy(next(doc for _, doc in committed() if doc["kind"] == kind))


def problems_of(doc, schemas, grace) -> list[str]:
    return [str(p) for p in validate_documents([("test.yaml", doc)], schemas, grace)]


def test_every_committed_manifest_is_valid(schemas, grace):
    documents = committed()
    kinds = {doc["kind"] for _, doc in documents}
    assert {
        "RayCluster",
        "RayJob",
        "RayService",
        "PodMonitor",
        "ServiceMonitor",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "Namespace",
    } <= kinds
    assert all(
        schemas.knows(doc)
        for _, doc in documents
        if doc["kind"] in {"RayCluster", "RayJob", "RayService", "PodMonitor", "ServiceMonitor"}
    )
    assert validate_documents(documents, schemas, grace) == []


def test_cli_validates_the_clusters_folder_and_reports_problems(tmp_path, capsys):
    """With no --crds: the CRDs shipped in the package."""
    assert kuberay_cli(["--project", str(PROJECT_ROOT), "validate", str(CLUSTERS)]) == 0
    assert " 0 problems" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (CLUSTERS / "raycluster.yaml").read_text().replace("enableInTreeAutoscaling", "enableInTree")
    )
    assert kuberay_cli(["--project", str(PROJECT_ROOT), "validate", str(tmp_path)]) == 1
    assert (
        f"{broken}: RayCluster/mlray: spec: Additional properties are not allowed" in capsys.readouterr().out
    )


def test_misspelled_field_is_rejected_with_its_path(schemas, grace):
    cluster = document("RayCluster")
    group = cluster["spec"]["workerGroupSpecs"][1]
    group["maxReplica"] = group.pop("maxReplicas")
    found = problems_of(cluster, schemas, grace)
    assert any("spec.workerGroupSpecs[1]" in p and "'maxReplica' was unexpected" in p for p in found), found
    assert any("'maxReplicas' is a required property" in p for p in found), found


def test_misspelled_field_deep_in_a_pod_template_is_rejected(schemas, grace):
    job = document("RayJob")
    container = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesytem"] = True
    found = problems_of(job, schemas, grace)
    path = "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].securityContext"
    assert any(path in p and "readOnlyRootFilesytem" in p for p in found), found


def test_integer_in_ray_start_params_is_rejected(schemas, grace):
    cluster = document("RayCluster")
    cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    found = problems_of(cluster, schemas, grace)
    assert any("spec.headGroupSpec.rayStartParams.num-cpus: 0 is not of type 'string'" in p for p in found), (
        found
    )


def test_unknown_metadata_field_is_rejected(schemas, grace):
    service = document("RayService")
    service["metadata"]["label"] = {"a": "b"}
    assert any(
        "metadata: " in p and "'label' was unexpected" in p for p in problems_of(service, schemas, grace)
    )


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        (lambda c: c.update(runAsUser=0, runAsNonRoot=False), "securityContext.runAsNonRoot", "must be true"),
        (lambda c: c.update(runAsUser=0), "securityContext.runAsUser", "must not be 0"),
        (
            lambda c: c.update(readOnlyRootFilesystem=False),
            "securityContext.readOnlyRootFilesystem",
            "must be true",
        ),
        (
            lambda c: c.update(allowPrivilegeEscalation=True),
            "securityContext.allowPrivilegeEscalation",
            "must be false",
        ),
        (
            lambda c: c.update(capabilities={"drop": ["NET_RAW"]}),
            "securityContext.capabilities.drop",
            "must drop ALL",
        ),
        (lambda c: c.pop("seccompProfile"), "", None),  # the pod-level profile still applies
    ],
)
def test_root_or_weakened_container_fails_naming_the_path(schemas, grace, change, path, expected):
    cluster = document("RayCluster")
    change(cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["securityContext"])
    found = problems_of(cluster, schemas, grace)
    if expected is None:
        assert found == []
        return
    prefix = "spec.workerGroupSpecs[0].template.spec.containers[0]."
    assert any(f"{prefix}{path}: {expected}" in p for p in found), found


def test_missing_writable_tmp_is_reported(schemas, grace):
    job = document("RayJob")
    container = job["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    container["volumeMounts"] = []
    found = problems_of(job, schemas, grace)
    assert any(
        "submitterPodTemplate.spec.containers[0].volumeMounts: needs a writable emptyDir at /tmp" in p
        for p in found
    )


def test_kuberay_rules(schemas, grace):
    job = document("RayJob")
    job["metadata"]["name"] = "mlray-" + "x" * 42  # 48 > 47
    job["spec"]["shutdownAfterJobFinishes"] = False
    group = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][1]
    group.update(minReplicas=3, replicas=1, maxReplicas=5)
    group["template"]["spec"]["terminationGracePeriodSeconds"] = 5
    found = "\n".join(problems_of(job, schemas, grace))
    assert "metadata.name: 'mlray-xxxx" in found and "a RayJob allows 47" in found
    assert "spec.ttlSecondsAfterFinished: only takes effect with shutdownAfterJobFinishes: true" in found
    assert "spec.rayClusterSpec.workerGroupSpecs[1]: expected minReplicas <= replicas <= maxReplicas" in found
    assert (
        "workerGroupSpecs[1].template.spec.terminationGracePeriodSeconds: spot group needs at least" in found
    )


def test_name_must_be_dns_1035(schemas, grace):
    cluster = document("RayCluster")
    cluster["metadata"]["name"] = "1-mlray"
    assert any(
        "metadata.name: '1-mlray' is not a DNS-1035 label" in p for p in problems_of(cluster, schemas, grace)
    )


def test_bad_serve_config_is_reported(schemas, grace):
    service = document("RayService")
    service["spec"]["serveConfigV2"] = "applications:\n  - name: x\n    import_paht: a:b\n"
    found = problems_of(service, schemas, grace)
    assert any("spec.serveConfigV2: not a valid Serve config" in p for p in found), found


def test_monitors_and_builtin_kinds_are_checked(schemas, grace):
    monitor = document("PodMonitor")
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "5s"
    assert any(
        "podMetricsEndpoints[0]" in p and "intervall" in p for p in problems_of(monitor, schemas, grace)
    )
    policy = document("NetworkPolicy")
    policy["spec"]["podSelectr"] = {}
    assert any("podSelectr" in p for p in problems_of(policy, schemas, grace))
    account = document("ServiceAccount")
    account["automountServiceAccountToken"] = "no"
    assert any("automountServiceAccountToken" in p for p in problems_of(account, schemas, grace))


def test_incremental_upgrade_variant_validates(schemas, grace, kuberay_config):
    from mlray.kuberay.manifests import ray_service
    from mlray.kuberay.workloads import serve_settings

    config = kuberay_config.model_copy(deep=True)
    config.service.upgrade_strategy = "NewClusterWithIncrementalUpgrade"
    service = ray_service(
        config,
        (PROJECT_ROOT / "serve_apps" / "config.yaml").read_text()
        if (PROJECT_ROOT / "serve_apps" / "config.yaml").is_file()
        else "applications: []\n",
        serve_settings(PROJECT_ROOT / "configs"),
        25,
    )
    assert service["spec"]["upgradeStrategy"]["clusterUpgradeOptions"]["gatewayClassName"]
    assert problems_of(service, schemas, grace) == []


def test_strict_schema_respects_kubernetes_extensions():
    schema = {
        "type": "object",
        "properties": {
            "known": {"type": "object", "properties": {"a": {"type": "string"}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {}}},
            "port": {"x-kubernetes-int-or-string": True},
            "maybe": {"type": "string", "nullable": True},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    result = strict(schema)
    assert result["additionalProperties"] is False
    assert result["properties"]["known"]["additionalProperties"] is False
    assert "additionalProperties" not in result["properties"]["free"]
    assert result["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert result["properties"]["maybe"]["type"] == ["string", "null"]
    assert result["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in schema  # the input is left alone
    import jsonschema

    jsonschema.validate({"free": {"anything": 1}, "port": 8080, "maybe": None}, result)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"port": [1]}, result)
    assert yaml.safe_load(yaml.safe_dump(result)) == result


def test_validate_without_the_validate_extra_exits_2_naming_the_install(tmp_path):
    """A plain ``pip install mlray`` lacks the schema validators: a clear error, not a traceback."""
    block = "import sys; sys.modules['kubernetes_validate'] = None; from mlray.kuberay.__main__ import main; "
    run = subprocess.run(
        [sys.executable, "-c", block + f"sys.exit(main(['--project', {str(PROJECT_ROOT)!r}, 'validate', "
         f"{str(CLUSTERS)!r}]))"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "validate needs kubernetes_validate: pip install 'mlray[validate]'" in run.stderr
