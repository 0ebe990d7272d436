"""Model of configs/train.yaml: a use case (data, model, metrics) trained with DDP on Ray Train."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from mlray.config.base import (
    ConfigModel,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    RunName,
)
from mlray.config.sections import JobConfig, SpotConfig, StorageConfig, TimeoutsConfig
from mlray.storage.locations import LOCATION_EXPECTED, check_location

# Loader arguments that name data (parquet_frame's path, the feature-service loader's entity_source):
# locations, resolved under storage.uri when relative.
DATA_LOCATION_KWARGS = ("path", "entity_source")
BUILTIN_METRICS = ("accuracy", "precision", "recall", "f1", "mae", "mse", "rmse")


def _check_import_path(value: str) -> str:
    module, sep, attribute = value.partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"{value!r}: expected 'package.module:function'")
    return value


class CheckpointingConfig(ConfigModel):
    enabled: bool = True
    frequency: PositiveInt = Field(default=5, description="Checkpoint every N epochs (a final one is always saved).")
    keep_best: PositiveInt = Field(
        default=2, description="Checkpoints kept by the monitored metric; the latest is always kept too."
    )
    every_n_steps: PositiveInt | None = Field(
        default=None,
        description="Also checkpoint every N optimizer steps, inside epochs, written to storage in the "
        "background while training goes on; resumed from only once complete, so a worker killed without "
        "notice loses at most N steps (plus any taken while the newest was still being written). Registered "
        "with Ray Train too when its controller has no report pending. null: epoch checkpoints only.",
    )


class MonitorConfig(ConfigModel):
    """The validation metric that decides the best model, early stopping and no-improvement timeouts."""

    metric: str = Field(default="val_loss", description="val_loss or val_<metric name>.")
    mode: Literal["min", "max"] = "min"


class EarlyStoppingConfig(ConfigModel):
    enabled: bool = False
    patience: PositiveInt = Field(default=5, description="Epochs without improvement before stopping.")
    min_delta: NonNegativeFloat = Field(default=0.0, description="Smallest change that counts as improvement.")


class TrainingSection(ConfigModel):
    distributed: bool = Field(default=True, description="false: one worker, no DDP.")
    num_workers: PositiveInt | tuple[PositiveInt, PositiveInt] = Field(
        default=2,
        description="Ray Train workers (DDP ranks), or [min, max] for elastic training: the run goes on with as "
        "many as the cluster holds, at least min (Ray Train V2 restarts the worker group from the latest "
        "checkpoint to shrink when a node is lost and to grow when capacity returns). The global batch stays "
        "batch_size x max: each of N workers takes batch_size x max / N (rounded down), so the learning rate "
        "and the samples per step do not change with N.",
    )
    elastic_resize_interval_s: PositiveFloat = Field(
        default=60.0,
        description="Elastic only: how often Ray Train looks for room to grow a healthy worker group back to "
        "max (a grow restarts the group from the latest checkpoint; ScalingConfig's "
        "elastic_resize_monitor_interval_s).",
    )
    worker_group_start_timeout_s: PositiveFloat = Field(
        default=15.0,
        description="How long Ray Train waits for a worker group's placement group (its resources) before "
        "trying again (RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S, set from this value: the config wins over that "
        "variable; from the environment use MLRAY_TRAINING__WORKER_GROUP_START_TIMEOUT_S). 15 s, "
        "not Ray's 60: after a node loss an elastic run first retries at the old size while the dead node's "
        "CPUs still count, and only after this timeout starts with fewer workers (74 s to go on with 60, "
        "25.5 s with 15; goal 30 s). The cost of short: Ray retries without limit (no run fails from it), but "
        "when new nodes take longer to arrive (autoscaling), an elastic run starts smaller and grows at the "
        "next resize check (one more restart from a checkpoint), and a fixed-size run asks again every period.",
    )
    use_gpu: bool = Field(default=False, description="One GPU per worker, NCCL backend (gloo on CPU).")
    amp: bool = Field(default=False, description="Mixed precision (autocast + GradScaler); CUDA only.")
    num_epochs: PositiveInt = 100
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    lr_decay: PositiveFloat = Field(default=1.0, description="ExponentialLR gamma applied every epoch.")
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: NonNegativeInt = 0
    max_failures: int = Field(default=3, ge=-1, description="Worker failures recovered from; -1 = no limit.")
    health_check_interval_s: PositiveFloat = Field(
        default=1.0,
        description="How often Ray Train's controller polls the workers, so how soon a dead one is noticed "
        "(RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, set from this value: the config wins over that variable; from the "
        "environment use MLRAY_TRAINING__HEALTH_CHECK_INTERVAL_S). Ray's own default is 2 s.",
    )
    stop_check_batches: PositiveInt = Field(
        default=16, description="Every N batches the ranks agree whether to stop (signal, iteration timeout)."
    )
    monitor: MonitorConfig = MonitorConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    metrics: list[str] = Field(
        default_factory=lambda: ["accuracy", "f1"],
        description=f"Validation metrics: built-in {list(BUILTIN_METRICS)} or package.module:function.",
    )
    checkpointing: CheckpointingConfig = CheckpointingConfig()

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in BUILTIN_METRICS:
                try:
                    _check_import_path(name)
                except ValueError:
                    raise ValueError(
                        f"unknown metric {name!r}: expected one of {list(BUILTIN_METRICS)} or package.module:function"
                    ) from None
        return names

    @model_validator(mode="after")
    def _monitor_is_computed(self) -> TrainingSection:
        computed = {"val_loss", *(f"val_{name.rpartition(':')[2]}" for name in self.metrics)}
        if self.monitor.metric not in computed:
            raise ValueError(f"monitor.metric {self.monitor.metric!r} is not computed; expected one of {sorted(computed)}")
        return self

    @field_validator("num_workers", mode="before")
    @classmethod
    def _number_or_pair(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return tuple(value)
        if isinstance(value, (int, str)):  # str: an override, read as a number by the union
            return value
        raise ValueError(f"expected a number of workers or [min, max], not {value!r}")

    @field_validator("num_workers")
    @classmethod
    def _worker_range(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError(f"[min, max] = {list(value)}: expected min <= max")
        return value

    @property
    def worker_range(self) -> tuple[int, int]:
        """(min, max) workers; equal when the size is fixed."""
        if not self.distributed:
            return 1, 1
        return self.num_workers if isinstance(self.num_workers, tuple) else (self.num_workers, self.num_workers)

    @property
    def world_size(self) -> int:
        """The most workers the run uses (all of them when the size is fixed)."""
        return self.worker_range[1]

    def worker_batch_size(self, workers: int) -> int:
        """Per-worker batch when ``workers`` ranks run: the global batch (batch_size x max) split evenly."""
        return max(1, self.batch_size * self.world_size // workers)


class DataSection(ConfigModel):
    """Where training data comes from: ``loader(**kwargs) -> mlray.train.data.TrainingData``."""

    loader: str = "mlray.train.loaders:parquet_frame"
    kwargs: dict[str, Any] = Field(
        default_factory=lambda: {"path": "data/processed/training.parquet"},
        description="Arguments of the loader. Its `path` or `entity_source`, when given, is a location: a "
        "relative path lies under storage.uri; an absolute path or gs:// URI is taken as is.",
    )

    _check_loader = field_validator("loader")(classmethod(lambda cls, v: _check_import_path(v)))

    @field_validator("kwargs")
    @classmethod
    def _data_arguments_are_locations(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        for name in DATA_LOCATION_KWARGS:
            location = kwargs.get(name)
            if location is None:
                continue
            if not isinstance(location, str):
                raise ValueError(f"{name}: {LOCATION_EXPECTED}, got {type(location).__name__}")
            try:
                check_location(location)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc} (got {location!r})") from None
        return kwargs

    def loader_kwargs(self, storage: StorageConfig) -> dict[str, Any]:
        """``kwargs`` with the data locations (``DATA_LOCATION_KWARGS``) resolved under ``storage.uri``."""
        return {name: storage.location(value) if name in DATA_LOCATION_KWARGS and value is not None else value
                for name, value in self.kwargs.items()}


class ModelSection(ConfigModel):
    """The network: ``factory(**kwargs)``; input size and feature statistics are filled in from the data."""

    factory: str = "mlray.models.mlp:build_mlp"
    kwargs: dict[str, Any] = Field(default_factory=lambda: {"hidden": [32, 32]})
    task: Literal["classification", "regression"] = "classification"
    registered_name: str | None = Field(
        default=None, description="Register the best model under this MLflow model name (models:/<name>/<v>)."
    )

    _check_factory = field_validator("factory")(classmethod(lambda cls, v: _check_import_path(v)))


class TrainingTimeoutsConfig(TimeoutsConfig):
    """Training's limits (mlray.train.stopping.TrainingStops). An improvement is measured from the monitored
    metric's best (training.monitor), as training.early_stopping.min_delta keeps it."""

    RENAMED: ClassVar[dict[str, str]] = {
        "improvement_threshold": "use improvement: {threshold: <value>} (an absolute gain of the monitored "
        "metric, as before; relative: true makes it a fraction)",
    }

    iteration: PositiveFloat | None = Field(
        default=300,
        description="Seconds one epoch may take; past it the run stops (timeout_iteration) with a checkpoint "
        "where it is, checked every training.stop_check_batches batches.",
    )


class TrainJobConfig(JobConfig):
    run_name: RunName = "mlray-train"
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    training: TrainingSection = TrainingSection()
    timeouts: TrainingTimeoutsConfig = TrainingTimeoutsConfig()
    spot: SpotConfig = SpotConfig()
