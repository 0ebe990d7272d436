"""Training and tuning metrics, by run (a Tune trial is its own run: ``<run>/<trial>``) and rank."""

from __future__ import annotations

import math
import time
from typing import Any

from mlray.metrics.base import SECONDS_BUCKETS, MetricSpec, Recorder

EPOCH = MetricSpec("mlray_train_epoch", "gauge", "Last completed epoch.", ("run",))
RUNNING = MetricSpec(
    "mlray_train_running", "gauge",
    "1 while the run's training loop runs, 0 once it ended (Ray keeps exporting an ended worker's metrics).",
    ("run",),
)
STEPS = MetricSpec("mlray_train_steps", "counter", "Optimizer steps taken, per worker rank.", ("run", "rank"))
SAMPLES = MetricSpec(
    "mlray_train_samples", "counter",
    "Training samples processed, per worker rank (rate: samples per second).",
    ("run", "rank"),
)
LOSS = MetricSpec(
    "mlray_train_loss", "gauge", "Loss of the last epoch, split train or val.", ("run", "split")
)
LAST_CHECKPOINT = MetricSpec(
    "mlray_train_last_checkpoint_timestamp_seconds", "gauge",
    "When the last checkpoint became durable (Unix time); time() minus it is the age.", ("run",),
)
CHECKPOINT_DURATION = MetricSpec(
    "mlray_train_checkpoint_duration_seconds", "histogram", "Writing and storing one checkpoint.", ("run",),
    SECONDS_BUCKETS,
)
CHECKPOINT_SIZE = MetricSpec(
    "mlray_train_checkpoint_size_bytes", "gauge", "Size of the last checkpoint.", ("run",)
)
RESTARTS = MetricSpec(
    "mlray_train_worker_restarts", "counter",
    "Worker groups that started again from a checkpoint of this run.",
    ("run",),
)
PREEMPTIONS = MetricSpec(
    "mlray_train_preemption_notices", "counter", "Preemption notices (a node of the run is going away).",
    ("run",),
)

ALL = (
    RUNNING, EPOCH, STEPS, SAMPLES, LOSS, LAST_CHECKPOINT, CHECKPOINT_DURATION, CHECKPOINT_SIZE, RESTARTS,
    PREEMPTIONS,
)


class TrainMetrics(Recorder):
    """What one training rank records; run-wide values (epoch, loss, checkpoints) only on rank 0."""

    def __init__(self, enabled: bool, run: str, rank: int):
        super().__init__(enabled, run=run, rank=str(rank))
        self.leader = rank == 0
        if self.leader:
            self.set(RUNNING, 1)
            self.start_at_zero(RESTARTS)
            self.start_at_zero(PREEMPTIONS)
            self.keep_gauges_alive()

    def finished(self) -> None:
        if self.leader:
            self.set(RUNNING, 0)
            self.stop_refreshing()

    def resumed(self) -> None:
        if self.leader:
            self.inc(RESTARTS)

    def step(self, samples: int) -> None:
        self.inc(STEPS)
        self.inc(SAMPLES, samples)

    def preemption_notice(self) -> None:
        if self.leader:
            self.inc(PREEMPTIONS)

    def epoch(self, metrics: dict[str, Any]) -> None:
        if not self.leader:
            return
        self.set(EPOCH, metrics.get("epoch"))
        for split in ("train", "val"):
            loss = metrics.get(f"{split}_loss")
            if loss is not None and math.isfinite(loss):
                self.set(LOSS, loss, split=split)

    def checkpoint(self, size_bytes: int, seconds: float) -> None:
        """A checkpoint of ``size_bytes`` is written, after ``seconds`` that training waited for it."""
        if not self.leader:
            return
        self.set(LAST_CHECKPOINT, time.time())
        self.observe(CHECKPOINT_DURATION, seconds)
        self.set(CHECKPOINT_SIZE, size_bytes)
