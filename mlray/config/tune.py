"""Model of configs/tune.yaml: a hyperparameter search (Ray Tune, ASHA) over the training loop."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mlray.config.base import ConfigModel, PositiveFloat, PositiveInt, RunName
from mlray.config.sections import JobConfig


class SearchDimension(ConfigModel):
    """One hyperparameter: a distribution (low/high) or a list of choices."""

    type: Literal["uniform", "loguniform", "randint", "choice"]
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds_or_values(self) -> SearchDimension:
        if self.type == "choice":
            if not self.values:
                raise ValueError("choice needs a non-empty 'values' list")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"{self.type} needs low < high")
        elif self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        return self

    def extremes(self) -> list[Any]:
        if self.type == "choice":
            return list(self.values or [])
        if self.type == "randint":
            return [int(self.low), int(self.high) - 1]
        return [self.low, self.high]


class AshaSection(ConfigModel):
    grace_period: PositiveInt = Field(default=1, description="Epochs every trial runs before it can be stopped.")
    reduction_factor: float = Field(default=2.0, gt=1)


class TuneJobConfig(JobConfig):
    run_name: RunName = "mlray-tune"
    train_config: str = Field(
        default="configs/train.yaml",
        description="Training config every trial starts from (a file shipped with the job, like --config); "
        "its storage.uri is replaced by this config's, so its relative data path lies under it.",
    )
    overrides: list[str] = Field(
        default_factory=list, description="dotted.key=value applied to the training config for all trials."
    )
    search_space: dict[str, SearchDimension] = Field(
        default_factory=lambda: {
            "training.lr": SearchDimension(type="loguniform", low=1e-4, high=1e-2),
            "training.batch_size": SearchDimension(type="choice", values=[32, 64, 128]),
        },
        description="Dotted training-config key -> distribution.",
    )
    num_samples: PositiveInt = 4
    max_concurrent_trials: PositiveInt = 2
    cpus_per_trial: PositiveFloat = 1
    scheduler: AshaSection = AshaSection()

    @model_validator(mode="after")
    def _trials_are_valid_training_configs(self) -> TuneJobConfig:
        """The base config, its overrides and every searched key at its bounds must validate now."""
        base = self.base_training_config()
        for key, dimension in self.search_space.items():
            for value in dimension.extremes():
                trial_config(base, {key: value})
        return self

    def base_training_config(self) -> Any:
        """The training config every trial starts from: ``train_config`` with ``overrides``, reading its
        data from and writing its checkpoints to this job's ``storage.uri`` (one root for the pipeline)."""
        from mlray.config.loader import load_config
        from mlray.config.train import TrainJobConfig

        return load_config(TrainJobConfig, self.train_config,
                           [f"storage.uri={self.storage.uri}", *self.overrides])


def trial_config(base: Any, params: dict[str, Any]) -> Any:
    """The training config of one trial: ``base`` with dotted keys replaced by sampled values."""
    from mlray.config.loader import set_dotted, validate_data

    data = base.model_dump()
    for key, value in params.items():
        set_dotted(data, key, value)
    return validate_data(type(base), data, f"search_space trial {sorted(params)}")
