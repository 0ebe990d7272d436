"""Model of configs/inference.yaml: the online prediction service (Ray Serve)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mlray.config.base import ConfigModel, Fraction, NonNegativeFloat, PositiveFloat, PositiveInt
from mlray.config.sections import MlflowConfig, ModelTrustConfig, MonitoringConfig, StorageConfig, StorageUri


class ServiceSection(ConfigModel):
    """Replicas, batching and request limits of the prediction deployment."""

    mode: Literal["batched", "sync"] = Field(
        default="batched",
        description="batched: async handlers with @serve.batch; sync: plain sync handlers, no batching.",
    )
    min_workers: PositiveInt = Field(default=1, description="Autoscaling floor (replicas).")
    max_workers: PositiveInt = Field(default=4, description="Autoscaling ceiling; = min_workers: fixed.")
    target_ongoing_requests: PositiveFloat = Field(
        default=32, description="Autoscaling target of in-flight requests per replica."
    )
    max_ongoing_requests: PositiveInt = Field(
        default=128, description="In-flight requests per replica; caps the batch size Serve can form."
    )
    batch_size: PositiveInt = Field(default=64, description="@serve.batch max_batch_size (runtime-changeable).")
    batch_wait_timeout_s: NonNegativeFloat = Field(
        default=0.0,
        description="@serve.batch batch_wait_timeout_s (runtime-changeable); 0: no added wait, a batch is "
        "what queued while the previous one ran.",
    )
    num_cpus: PositiveFloat = Field(default=1, description="CPUs reserved per replica.")
    max_body_bytes: PositiveInt = Field(default=1_048_576, description="Larger request bodies get 413.")
    max_instances: PositiveInt = Field(default=1024, description="Instances per request; more get 422.")
    access_log: bool = Field(default=True, description="Serve's per-request access log lines.")
    health_check_period_s: PositiveFloat = 10.0
    health_check_timeout_s: PositiveFloat = 30.0

    @model_validator(mode="after")
    def _workers_ordered(self) -> ServiceSection:
        if self.min_workers > self.max_workers:
            raise ValueError(f"min_workers ({self.min_workers}) must be <= max_workers ({self.max_workers})")
        return self


class ModelsSection(ConfigModel):
    """Model versions by name. A location is a bundle folder (relative to ``storage.uri``,
    absolute, or ``gs://``) or an MLflow registry URI (``models:/name/3``, ``models:/name@alias``)."""

    versions: dict[str, str] = {"v1": "mlray-train/model"}
    stable: str = "v1"
    cache_size: PositiveInt = Field(default=3, description="Loaded versions kept per replica (LRU).")
    version_header: str = Field(default="x-model-version", description="Header that pins a request's version.")
    feature_names: list[str] | None = Field(
        default=None, description="Input columns of models whose spec.json names none."
    )
    trust: ModelTrustConfig = ModelTrustConfig()

    @model_validator(mode="after")
    def _stable_is_known(self) -> ModelsSection:
        if not self.versions:
            raise ValueError("versions: at least one model version is required")
        if self.stable not in self.versions:
            raise ValueError(f"stable: {self.stable!r} is not one of versions {sorted(self.versions)}")
        return self


class RolloutSection(ConfigModel):
    """Canary rollout: traffic share, rules judged per window, and when to step up, promote or roll back.

    A window counts when the canary served at least ``min_requests`` in it. It breaks the rules, and the canary
    is rolled back at once, when the canary's error rate or p99 passes an absolute limit, or passes stable's in
    the same window by more than the margin / factor (judged only when stable also served ``min_requests``).
    Both versions see the same load, so the relative rules do not trip on load alone.
    """

    canary: str | None = Field(default=None, description="Version under test; null: all traffic to stable.")
    canary_weight: Fraction = Field(default=0.0, description="Canary's starting share of traffic (0 to 1).")
    sticky_header: str = Field(default="x-request-key", description="Same key, same version.")
    window_s: PositiveFloat = Field(default=30.0, description="Length of one evaluation window, in seconds.")
    min_requests: PositiveInt = Field(
        default=20, description="Requests a version needs in a window for the window to be judged (canary) or "
        "for the relative rules to compare against it (stable)."
    )
    max_error_rate: Fraction = Field(
        default=0.05, description="Absolute limit on the canary's error rate in a window (fraction, 0 to 1)."
    )
    max_p99_ms: PositiveFloat | None = Field(
        default=None,
        description="Absolute limit on the canary's p99 latency in a window, in ms; null: none (the relative "
        "rule judges latency, so load that slows both versions does not roll the canary back).",
    )
    max_error_rate_margin: Fraction = Field(
        default=0.02,
        description="Roll back when the canary's error rate exceeds stable's in the same window by more than "
        "this (a fraction: 0.02 = 2 percentage points).",
    )
    max_p99_ratio: float = Field(
        default=2.0,
        gt=1,
        description="Roll back when the canary's p99 exceeds stable's in the same window by more than this "
        "factor (and by at least min_p99_excess_ms).",
    )
    min_p99_excess_ms: NonNegativeFloat = Field(
        default=20.0,
        description="The relative p99 rule trips only when the canary's p99 is also at least this many ms above "
        "stable's, so scheduler jitter on a millisecond model is not a regression.",
    )
    promotion_steps: list[Fraction] = Field(
        default_factory=lambda: [0.25, 0.5, 1.0],
        description="Canary traffic shares to step through, in increasing order and ending at 1.0; after "
        "promote_after_windows healthy windows the canary moves to the next step above its share, and "
        "reaching 1.0 promotes it to stable. [1.0]: promote in one step.",
    )
    promote_after_windows: PositiveInt | None = Field(
        default=5,
        description="Healthy windows in a row at a step before the next step; null: never step automatically.",
    )
    report_interval_s: PositiveFloat = Field(
        default=0.5, description="How often each replica reports figures and fetches the rollout state, in seconds."
    )
    fallback_to_stable: bool = Field(
        default=True,
        description="A prediction the canary fails with a server error (its model raised or would not load) is "
        "tried once more on stable, and the client gets stable's answer (header x-mlray-canary-fallback names the "
        "canary). The failure still counts against the canary for the rules above. Never for client errors "
        "(4xx), for requests that pin a version, or when stable itself fails. Predictions are idempotent; "
        "false: the client gets the canary's 500. Read by ingress replicas at start.",
    )

    @model_validator(mode="after")
    def _steps_increase_to_one(self) -> RolloutSection:
        steps = self.promotion_steps
        if not steps or steps[-1] != 1.0:
            raise ValueError(f"promotion_steps: expected increasing shares ending at 1.0, got {steps}")
        if any(later <= earlier for earlier, later in zip(steps, steps[1:])) or steps[0] <= 0:
            raise ValueError(f"promotion_steps: expected increasing shares above 0, got {steps}")
        return self


class AuthSection(ConfigModel):
    """API keys for every route but /healthz and /readyz; admin keys also for rollout changes.
    Without any key, the service serves only when Serve listens on loopback."""

    api_keys_env: str = Field(default="MLRAY_SERVE_API_KEYS", description="Comma-separated keys.")
    api_keys_file: str | None = Field(
        default="/etc/mlray/serve/api-keys", description="Mounted secret: one key per line."
    )
    admin_keys_env: str = Field(
        default="MLRAY_SERVE_ADMIN_KEYS",
        description="Comma-separated admin keys: needed for PUT /v1/rollout, valid wherever an API key is.",
    )
    admin_keys_file: str | None = Field(
        default="/etc/mlray/serve/admin-keys", description="Mounted secret: one admin key per line."
    )


class FeaturesSection(ConfigModel):
    """Feature enrichment for instances that carry entity keys instead of full features."""

    enricher: str = Field(description="Import path of a factory returning a FeatureEnricher.")
    kwargs: dict[str, Any] = {}
    unknown_entity_status: int = Field(default=404, ge=400, le=499)


class PredictionLogSection(ConfigModel):
    """Sampled request/prediction records written as JSON lines under ``sink``."""

    sink: StorageUri | None = Field(default=None, description="Folder (local or gs://); null: off.")
    sample_rate: Fraction = 0.0
    flush_every: PositiveInt = 100
    flush_interval_s: PositiveFloat = 5.0


class InferenceConfig(ConfigModel):
    app_name: str = "mlray"
    service: ServiceSection = ServiceSection()
    models: ModelsSection = ModelsSection()
    rollout: RolloutSection = RolloutSection()
    auth: AuthSection = AuthSection()
    features: FeaturesSection | None = None
    prediction_log: PredictionLogSection = PredictionLogSection()
    monitoring: MonitoringConfig = MonitoringConfig()
    storage: StorageConfig = StorageConfig()
    mlflow: MlflowConfig = MlflowConfig()

    def model_roots(self) -> list[str]:
        """Where versions may be loaded from: ``models.trust.allowed_roots``, else storage.uri and the registry."""
        roots = self.models.trust.allowed_roots
        return list(roots) if roots is not None else [self.storage.uri, "models:/"]

    @model_validator(mode="after")
    def _canary_is_known(self) -> InferenceConfig:
        canary = self.rollout.canary
        if canary is not None and canary not in self.models.versions:
            raise ValueError(f"rollout.canary: {canary!r} is not one of models.versions {sorted(self.models.versions)}")
        if canary is not None and canary == self.models.stable:
            raise ValueError(f"rollout.canary: {canary!r} is already models.stable")
        return self
