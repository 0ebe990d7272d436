"""MLflow calls that training, tuning and optimization share: the experiment by name, and batched logging.

Batches rather than one call per value: a solve's incumbent history or a run's flattened config is
hundreds of values, and each call is a round trip to the tracking server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlflow.tracking import MlflowClient

# MLflow's limits per log_batch call.
PARAMS_PER_BATCH, TAGS_PER_BATCH, METRICS_PER_BATCH = 100, 100, 1000


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it on first use."""
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


def log_in_batches(client: MlflowClient, run_id: str, params: Sequence[Any] = (), metrics: Sequence[Any] = (),
                   tags: Sequence[Any] = ()) -> None:
    """``log_batch`` calls within MLflow's limits (``mlflow.entities`` Param, Metric and RunTag values)."""
    batches = ((params, PARAMS_PER_BATCH, "params"), (metrics, METRICS_PER_BATCH, "metrics"),
               (tags, TAGS_PER_BATCH, "tags"))
    for values, size, keyword in batches:
        for start in range(0, len(values), size):
            client.log_batch(run_id, **{keyword: list(values[start:start + size])})
