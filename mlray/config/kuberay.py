"""Model of configs/kuberay.yaml: what ``python -m mlray.kuberay render`` puts on GKE.

Only cluster shape, identity and networking live here. How long a job may run
and how long a spot node needs to checkpoint come from each job's own config
(``timeouts.total_runtime``, ``spot.grace_period``), so the manifests and the
local runs read the same numbers.

Length: one model per config file, so every section of configs/kuberay.yaml is here with the
descriptions that make the configuration reference.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from mlray.config.base import ConfigModel, NonNegativeInt, PositiveInt

# Kubernetes resource quantities: "500m", "2", "8Gi", "1.5".
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _dns_label(value: str) -> str:
    if not DNS_1035_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1035 label (lower-case letters, digits, '-', starting with a letter)"
        )
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block such as 10.0.0.0/8 ({exc})") from None
    return value


Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Digest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
Port = Annotated[int, Field(gt=0, lt=65536)]


class ImageSection(ConfigModel):
    """The image built from ``clusters/image/Dockerfile`` (project + pinned Ray base)."""

    repository: str = "us-docker.pkg.dev/my-gcp-project/mlray/mlray"
    tag: str = "0.1.0"
    gpu_tag: str = Field(
        default="0.1.0-gpu", description="Same Dockerfile built on the CUDA base, for GPU groups."
    )
    digest: Digest | None = Field(
        default=None,
        description="sha256 digest of the pushed image (sha256:<64 hex>): pods then pull repository@digest, "
        "which cannot be moved the way a tag can.",
    )
    gpu_digest: Digest | None = Field(default=None, description="Digest of the GPU image, likewise.")
    pull_policy: Literal["IfNotPresent", "Always"] = "IfNotPresent"

    def reference(self, gpu: bool = False) -> str:
        """``repository@digest`` when a digest is configured, else ``repository:tag``."""
        digest = self.gpu_digest if gpu else self.digest
        if digest is not None:
            return f"{self.repository}@{digest}"
        return f"{self.repository}:{self.gpu_tag if gpu else self.tag}"


class GcpSection(ConfigModel):
    project: str = "my-gcp-project"
    checkpoint_uri: str = Field(
        default="gs://my-mlray-bucket/runs",
        description="Storage root (storage.uri) shared by every RayJob and the RayService: each job reads "
        "what the one before it wrote there; run names keep checkpoints and models apart.",
    )

    @field_validator("checkpoint_uri")
    @classmethod
    def _is_gcs(cls, value: str) -> str:
        if not value.startswith("gs://") or len(value) <= len("gs://"):
            raise ValueError(f"expected a gs://bucket[/prefix] URI, got {value!r}")
        return value.rstrip("/")


class PodResources(ConfigModel):
    """Requests equal limits (Guaranteed QoS): Ray sizes itself from the limits."""

    cpu: Quantity = "2"
    memory: Quantity = "8Gi"


class SubmitterResources(PodResources):
    """The pod that runs ``ray job submit`` and follows the logs: small."""

    cpu: Quantity = "500m"
    memory: Quantity = "1Gi"


class WorkerGroupSection(PodResources):
    name: DnsLabel
    gpus: NonNegativeInt = 0
    market: Literal["on-demand", "spot"] = "on-demand"
    accelerator: str | None = Field(
        default=None, description="GKE accelerator type (cloud.google.com/gke-accelerator), e.g. nvidia-l4."
    )
    min_replicas: NonNegativeInt = 0
    replicas: NonNegativeInt = 0
    max_replicas: NonNegativeInt = 4

    @model_validator(mode="after")
    def _consistent(self) -> WorkerGroupSection:
        if not self.min_replicas <= self.replicas <= self.max_replicas:
            raise ValueError(
                f"worker group {self.name!r}: expected min_replicas <= replicas <= max_replicas, "
                f"got {self.min_replicas} <= {self.replicas} <= {self.max_replicas}"
            )
        if self.gpus and not self.accelerator:
            raise ValueError(f"worker group {self.name!r}: gpus > 0 needs an accelerator type")
        return self


def default_worker_groups() -> list[WorkerGroupSection]:
    return [
        WorkerGroupSection(
            name="cpu", market="on-demand", cpu="4", memory="16Gi", min_replicas=1, replicas=1, max_replicas=4
        ),
        WorkerGroupSection(
            name="cpu-spot", market="spot", cpu="4", memory="16Gi", min_replicas=0, max_replicas=10
        ),
        WorkerGroupSection(
            name="gpu-spot",
            market="spot",
            cpu="8",
            memory="32Gi",
            gpus=1,
            accelerator="nvidia-l4",
            min_replicas=0,
            max_replicas=4,
        ),
    ]


class AutoscalerSection(ConfigModel):
    idle_timeout_seconds: PositiveInt = 60
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = "Default"
    cpu: Quantity = "500m"
    memory: Quantity = "512Mi"


class SpotSection(ConfigModel):
    notice_seconds: PositiveInt = Field(
        default=30,
        description="Time from a spot preemption notice to the VM stopping (GKE: 30 s). The preStop drain "
        "and terminationGracePeriodSeconds must fit in it, or the render is refused.",
    )
    teardown_margin_seconds: PositiveInt = Field(
        default=5,
        description="Added to the jobs' spot.grace_period for terminationGracePeriodSeconds "
        "(Ray's own teardown after the drain).",
    )


class ScratchSection(ConfigModel):
    """``sizeLimit`` of the pods' writable emptyDirs: a pod that writes more is evicted, not the node filled."""

    tmp: Quantity = "1Gi"
    ray_session: Quantity = Field(
        default="20Gi", description="/tmp/ray: Ray's logs, sockets and objects spilled from the object store."
    )
    shm_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Memory-backed /dev/shm (the object store) as a fraction of the container's memory limit.",
    )


class JobsSection(ConfigModel):
    deadline_margin_seconds: PositiveInt = Field(
        default=900,
        description="Added to timeouts.total_runtime for activeDeadlineSeconds: the deadline also counts "
        "cluster start-up (spot node provisioning, image pull).",
    )
    ttl_seconds_after_finished: NonNegativeInt = 300
    backoff_limit: NonNegativeInt = 2
    env: dict[str, str] = Field(
        default_factory=lambda: {
            "MLRAY_FEAST_DATASET": "mlray_features",
            "MLRAY_FEAST_BUCKET": "my-mlray-bucket",
            "MLRAY_FEAST_LOCATION": "US",
        },
        description="Environment of every RayJob (driver and workers), e.g. what configs/features.gcp.yaml "
        "expands; GOOGLE_CLOUD_PROJECT is always gcp.project.",
    )
    overrides: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Extra `--set KEY=VALUE` overrides of a RayJob's entrypoint, by job (train, tune, "
        "optimize, preprocess, batch-predict, materialize), e.g. {optimize: [problem.path=gs://b/p.vrp]} "
        "(the default problem is configs/optimize.yaml's); checked against the job's config at render time.",
    )
    submitter: SubmitterResources = SubmitterResources()


class IncrementalUpgradeSection(ConfigModel):
    """``NewClusterWithIncrementalUpgrade``: needs Gateway API and the operator's incremental-upgrade gate."""

    gateway_class_name: str = "gke-l7-rilb"
    step_size_percent: PositiveInt = Field(default=20, le=100)
    interval_seconds: PositiveInt = 30
    max_surge_percent: PositiveInt = Field(default=100, le=100)


class ServiceSection(ConfigModel):
    worker_groups: list[str] = Field(
        default_factory=lambda: ["cpu", "cpu-spot"], description="Worker groups of the RayService cluster."
    )
    upgrade_strategy: Literal["NewCluster", "NewClusterWithIncrementalUpgrade"] = "NewCluster"
    incremental: IncrementalUpgradeSection = IncrementalUpgradeSection()
    serve_port: PositiveInt = 8000


class IpPort(ConfigModel):
    cidr: Cidr
    port: Port


class NetworkSection(ConfigModel):
    """Ports and peers of the platform's network design (see docs/kuberay.md).

    Ingress and egress are denied by default; these name what is let through.
    """

    feature_server_port: PositiveInt = 8666
    feature_server_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "feast-feature-server"}
    )
    mlflow_port: PositiveInt = 5000
    mlflow_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app": "mlflow"},
        description="Labels of the MLflow tracking server's pods in this namespace (ingress to them, egress "
        "from Ray pods to them).",
    )
    mlflow_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="Where an MLflow server outside the cluster runs (egress on mlflow_port).",
    )
    dns_namespace: str = "kube-system"
    dns_pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    metadata_server: list[IpPort] = Field(
        default_factory=lambda: [
            IpPort(cidr="169.254.169.254/32", port=80),
            IpPort(cidr="169.254.169.252/32", port=988),
        ],
        description="GKE metadata server (Workload Identity tokens): 169.254.169.254:80 on Dataplane V2, "
        "169.254.169.252:988 otherwise.",
    )
    google_apis_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["199.36.153.8/30"],
        description="Where pods reach Google APIs (GCS, BigQuery, Datastore) on 443: private.googleapis.com "
        "(Private Google Access + a googleapis.com DNS zone); 0.0.0.0/0 would open all of the internet on 443.",
    )
    api_server_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["172.16.0.2/32"],
        description="The cluster's control-plane endpoint, for the autoscaler (head pods only); "
        "`kubectl get endpoints kubernetes -n default`.",
    )
    api_server_port: Port = 443
    prometheus_port: PositiveInt = 9090
    monitoring_namespace: str = "monitoring"
    ingress_namespace: str = Field(default="gateway", description="Namespace of the ingress/gateway pods.")
    operator_namespace: str = Field(
        default="kuberay-system", description="Namespace of the KubeRay operator."
    )
    load_balancer_cidrs: list[str] = Field(
        default_factory=lambda: ["35.191.0.0/16", "130.211.0.0/22"],
        description="Google Cloud load balancer and health-check ranges (container-native LB).",
    )


PromDuration = Annotated[str, Field(pattern=r"^(0|([0-9]+(ms|s|m|h|d))+)$")]


class AlertsSection(ConfigModel):
    """Thresholds of the alert rules (clusters/monitoring/prometheusrule.yaml, ``mlray.kuberay.alerts``)."""

    enabled: bool = True
    evaluation_interval: PromDuration = "30s"
    hold_for: PromDuration = Field(
        default="5m", description="How long a condition must hold before its alert fires (the rules' `for`)."
    )
    serving_window: PromDuration = Field(
        default="5m", description="Window of the serving error and latency rates."
    )
    serving_error_ratio: float = Field(
        default=0.05, gt=0, le=1,
        description="Failed / all prediction requests of a version, over serving_window.",
    )
    serving_p99_seconds: float = Field(default=1.0, gt=0, description="p99 prediction latency of a role.")
    training_stalled_for: PromDuration = Field(
        default="15m", description="A live training run with no optimizer step for this long."
    )
    training_checkpoint_max_age_seconds: float = Field(
        default=3600, gt=0, description="A live training run whose last durable checkpoint is older."
    )
    preemptions_window: PromDuration = "1h"
    preemptions_max: PositiveInt = Field(
        default=3, description="Preemption notices of one run within preemptions_window that page."
    )
    solver_no_improvement_seconds: float = Field(
        default=1800, gt=0, description="A live optimization whose incumbent has not improved for this long."
    )
    feature_age_ttl_factor: float = Field(
        default=1.0, gt=0, description="Alert when served features are older than this many times their TTL."
    )


class MonitoringSection(ConfigModel):
    metrics_port: PositiveInt = 8080
    scrape_interval: str = Field(default="30s", pattern=r"^[0-9]+(ms|s|m|h)$")
    monitor_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "prometheus"},
        description="Labels the Prometheus operator selects PodMonitors/ServiceMonitors by.",
    )
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    grafana_url: str = "http://grafana.monitoring.svc:3000"
    grafana_iframe_url: str = Field(
        default="https://grafana.example.com", description="Grafana as browsers reach it."
    )
    alerts: AlertsSection = AlertsSection()


class MlflowDatabaseSection(ConfigModel):
    """The tracking server's backend store: Cloud SQL for PostgreSQL through the Cloud SQL Auth Proxy sidecar."""

    cloud_sql_instance: str = Field(
        default="my-gcp-project:us-central1:mlray-mlflow",
        pattern=r"^[a-z0-9-:.]+:[a-z0-9-]+:[a-z0-9-]+$",
        description="Instance connection name PROJECT:REGION:INSTANCE; the proxy listens on 127.0.0.1:port.",
    )
    port: Port = 5432
    private_ip: bool = Field(default=True, description="Connect over the VPC (no public IP on the instance).")
    instance_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["10.20.0.0/24"],
        description="Where the instance is reached: its private IP as /32, or the VPC's private services "
        "access range (`gcloud sql instances describe INSTANCE --format='value(ipAddresses)'`); the MLflow "
        "pods' NetworkPolicy opens egress there on instance_ports (besides Google APIs on 443 for the "
        "proxy's SQL Admin API calls).",
    )
    instance_ports: list[Port] = Field(
        default_factory=lambda: [3307],
        description="Ports of that egress: 3307, where the Cloud SQL Auth Proxy connects to the instance; "
        "add 5432 for a client that connects to the instance's private IP without the proxy.",
        min_length=1,
    )
    uri_secret: DnsLabel = Field(
        default="mlflow-db",
        description="Secret holding the SQLAlchemy URI under uri_secret_key, e.g. "
        "postgresql://mlflow:PASSWORD@127.0.0.1:5432/mlflow (created out of band; never rendered).",
    )
    uri_secret_key: str = "uri"
    proxy_image: str = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.3"
    proxy: PodResources = PodResources(cpu="250m", memory="256Mi")


class MlflowServerSection(ConfigModel):
    """The MLflow tracking server in the namespace (``mlflow server``), which the jobs' tracking URI names.

    Port and pod labels are ``network.mlflow_port`` and ``network.mlflow_pod_labels``.
    """

    enabled: bool = True
    image: str | None = Field(
        default=None,
        description="Image with mlflow, google-cloud-storage and a PostgreSQL driver (psycopg 3); "
        "null = the project image (image.repository), which must then carry the driver.",
    )
    artifacts_uri: str = Field(
        default="gs://my-mlray-bucket/mlflow-artifacts",
        description="Where the server keeps artifacts (--artifacts-destination); clients upload through it.",
    )
    replicas: PositiveInt = 1
    workers: PositiveInt = Field(default=2, description="uvicorn workers of mlflow server.")
    resources: PodResources = PodResources(cpu="1", memory="2Gi")
    database: MlflowDatabaseSection = MlflowDatabaseSection()

    @field_validator("artifacts_uri")
    @classmethod
    def _is_gcs(cls, value: str) -> str:
        return GcpSection._is_gcs(value)


class KubeRayConfig(ConfigModel):
    namespace: DnsLabel = "mlray"
    name_prefix: DnsLabel = "mlray"
    ray_version: str = Field(
        default="2.60.0", description="Must match the image's Ray (and requirements.lock)."
    )
    kubernetes_version: str = Field(
        default="1.34", description="Schemas the built-in kinds are validated against."
    )
    run_as_user: PositiveInt = Field(default=1000, description="The rayproject/ray image's 'ray' user.")
    run_as_group: PositiveInt = 100
    image: ImageSection = ImageSection()
    gcp: GcpSection = GcpSection()
    head: PodResources = PodResources()
    worker_groups: list[WorkerGroupSection] = Field(default_factory=default_worker_groups)
    autoscaler: AutoscalerSection = AutoscalerSection()
    spot: SpotSection = SpotSection()
    scratch: ScratchSection = ScratchSection()
    jobs: JobsSection = JobsSection()
    service: ServiceSection = ServiceSection()
    network: NetworkSection = NetworkSection()
    monitoring: MonitoringSection = MonitoringSection()
    mlflow_server: MlflowServerSection = MlflowServerSection()

    @model_validator(mode="after")
    def _groups_resolve(self) -> KubeRayConfig:
        names = [group.name for group in self.worker_groups]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"worker_groups: duplicate names {duplicates}")
        unknown = [name for name in self.service.worker_groups if name not in names]
        if unknown:
            raise ValueError(f"service.worker_groups: {unknown} are not in worker_groups {names}")
        return self

    def group(self, name: str) -> WorkerGroupSection:
        return next(group for group in self.worker_groups if group.name == name)
