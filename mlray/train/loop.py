"""The training loop every rank runs: DDP over sharded data, validation, checkpoints, stop rules.

It knows nothing about Ray: a ``Session`` (Ray Train worker, Tune trial or a
plain process) reports and stores checkpoints, so the same code runs under Ray
Train, Ray Tune, torchrun and the GPU check; what watches or paces it is a ``TrainingCallback``.
A run: ``start_run`` (seeds, parts, ``restore``, data), then per epoch ``run_epoch`` (batches, step
checkpoints, validation, stop rules) and ``report_epoch`` (a checkpoint when ``epoch_checkpoint_due``).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from mlray.config.train import TrainingSection
from mlray.metrics.train import TrainMetrics
from mlray.train.callbacks import Callbacks, LoopStart, TrainingCallback
from mlray.train.checkpoint import first_valid, report_step_checkpoint, report_with_checkpoint, restore_rng
from mlray.train.distributed import agree_max, broadcast_from_rank0
from mlray.train.metrics import resolve_metrics
from mlray.train.parts import LoopSettings, TrainingParts, build_parts, cpu_state, evaluate, train_step, training_state
from mlray.train.prepare import PreparedData
from mlray.train.session import Session
from mlray.train.stopping import EarlyStopping, MetricTracker, StopReason, TrainingStops

log = logging.getLogger("mlray.train")


def _shard(array: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    return array[rank::world_size]


class PositionedSampler(DistributedSampler):
    """``DistributedSampler`` that can start an epoch part-way: the same order, its first ``skip`` indices left out.

    The order depends only on seed, epoch and world size, so skipping the samples
    of the batches already done continues the epoch exactly where it stopped.
    """

    skip: int = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)


def epoch_position(epoch: int, batches_done: int, losses: list[float]) -> dict[str, Any]:
    """Where an epoch stands: a checkpoint written here resumes at batch ``batches_done + 1``."""
    return {"epoch": epoch, "batches": batches_done, "losses": torch.tensor(losses, dtype=torch.float64)}


@dataclass
class LoopState:
    """What carries over from epoch to epoch: what a checkpoint holds and ``restore`` brings back."""

    tracker: MetricTracker
    early: EarlyStopping
    best_model: dict[str, torch.Tensor] | None = None
    start_epoch: int = 1
    step: int = 0  # optimizer steps taken over the whole run
    position: dict[str, Any] | None = None  # where the epoch in progress stopped, if it stopped inside
    rng: dict[str, Any] | None = None  # this rank's RNG state in the checkpoint resumed from
    skipped_checkpoints: int = 0


@dataclass
class RankRun:
    """One rank's run: what its epochs share."""

    settings: LoopSettings
    session: Session
    parts: TrainingParts
    state: LoopState
    observed: TrainMetrics
    callbacks: Callbacks
    stops: TrainingStops
    metric_fns: dict[str, Any]
    sampler: PositionedSampler
    loader: DataLoader
    batch_size: int
    validation: tuple[torch.Tensor, torch.Tensor]

    @property
    def training(self) -> TrainingSection:
        return self.settings.config.training

    def agreed_stop(self, local: StopReason | None) -> StopReason | None:
        """Every rank must agree, or the collectives of the next step would hang. A stop request (SIGTERM,
        a preemption notice) on any rank stops them all, with a checkpoint of where they are."""
        if self.session.stop_requested():
            local = StopReason.PREEMPTED
        return StopReason.by_code(agree_max(local.code if local else 0, self.session.device))


@dataclass
class EpochResult:
    metrics: dict[str, Any]
    stop: StopReason | None


def train_loop(settings: LoopSettings, data: PreparedData, session: Session,
               callbacks: Iterable[TrainingCallback] = ()) -> dict[str, Any]:
    """Run epochs until done or a stop rule fires; returns the last reported metrics."""
    run = start_run(settings, data, session, callbacks)
    last: dict[str, Any] = {"epoch": run.state.start_epoch - 1, "status": StopReason.COMPLETED.value}
    for epoch in range(run.state.start_epoch, run.training.num_epochs + 1):
        result = run_epoch(run, epoch)
        report_epoch(run, epoch, result)
        last = result.metrics
        if result.stop is not None:
            if session.rank == 0:
                log.warning("stopping at epoch %d: %s", epoch, result.stop.value)
            if session.preemption_notice():
                run.observed.preemption_notice()
            session.after_stop()
            break
    run.observed.finished()
    run.callbacks.on_end(last)
    return last


def start_run(settings: LoopSettings, data: PreparedData, session: Session,
              callbacks: Iterable[TrainingCallback]) -> RankRun:
    """Seeds, parts, the restored state and this rank's data: everything before the first epoch."""
    config, training = settings.config, settings.config.training
    rank, world_size, device = session.rank, session.world_size, session.device
    torch.manual_seed(training.seed + rank)
    np.random.seed(training.seed + rank)
    parts = build_parts(settings, device)
    observed = TrainMetrics(config.monitoring.enable_metrics, config.run_name, rank)
    metric_fns = resolve_metrics(training.metrics)
    state = LoopState(MetricTracker(training.monitor.mode, training.early_stopping.min_delta),
                      EarlyStopping(training.early_stopping.patience))
    stops = TrainingStops.from_config(config.timeouts, training.monitor.mode, settings.run_started)
    restore(session, parts, state, observed)

    # copies: arrays from Ray's object store are read-only
    train_set = TensorDataset(torch.from_numpy(data.x_train.copy()), torch.from_numpy(data.y_train.copy()))
    sampler = PositionedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=training.seed)
    # Elastic: the global batch stays the same whatever the number of ranks, so a position counted in
    # batches covers the same samples after a resize (DistributedSampler interleaves one permutation).
    batch_size = training.worker_batch_size(world_size)
    loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler)
    validation = (torch.from_numpy(_shard(data.x_val, rank, world_size)).to(device),
                  torch.from_numpy(_shard(data.y_val, rank, world_size)).to(device))
    run = RankRun(settings, session, parts, state, observed, Callbacks(callbacks, rank), stops, metric_fns,
                  sampler, loader, batch_size, validation)
    run.callbacks.on_start(LoopStart(rank, world_size, state.start_epoch, state.skipped_checkpoints))
    return run


def restore(session: Session, parts: TrainingParts, state: LoopState, observed: TrainMetrics) -> None:
    """The newest checkpoint that loads, the same on every rank, into ``parts`` and ``state``."""
    rank = session.rank
    loaded = first_valid(session.checkpoint_candidates(), rank)
    name = loaded.name if loaded else None
    chosen = broadcast_from_rank0(name)
    if chosen != name:  # ranks on different states would train apart silently
        raise RuntimeError(f"rank {rank} would resume from {name}, rank 0 from {chosen}")
    if loaded is None:
        return
    saved = loaded.state
    parts.core.load_state_dict(saved["model"])
    parts.optimizer.load_state_dict(saved["optimizer"])
    parts.scheduler.load_state_dict(saved["scheduler"])
    parts.scaler.load_state_dict(saved["scaler"])
    state.tracker.best, state.tracker.best_epoch = saved["best_metric"], saved["best_epoch"]
    state.early.load_state_dict(saved["early_stopping"])
    state.best_model = saved["best_model"]
    state.step, state.position = int(saved.get("step", 0)), saved.get("position")
    state.start_epoch = state.position["epoch"] if state.position else saved["epoch"] + 1
    state.rng, state.skipped_checkpoints = loaded.rng, len(loaded.skipped)
    observed.resumed()
    if loaded.rng is not None and state.position is None:
        restore_rng(loaded.rng)
    if rank == 0:
        log.info("resumed from checkpoint %s: continuing at epoch %d, step %d", loaded.name, state.start_epoch,
                 state.step + 1)


def run_epoch(run: RankRun, epoch: int) -> EpochResult:
    """One epoch, or what is left of it: its batches, then validation and the stop rules."""
    started = time.time()
    losses, stop = train_batches(run, epoch)
    return close_epoch(run, epoch, losses, stop, started)


def train_batches(run: RankRun, epoch: int) -> tuple[list[float], StopReason | None]:
    """The epoch's batches from where it stands, step checkpoints as due; a stop ends it, its position kept."""
    state, training, device = run.state, run.training, run.session.device
    run.stops.start_epoch()
    run.sampler.set_epoch(epoch)
    position = state.position if state.position is not None and state.position["epoch"] == epoch else None
    done = int(position["batches"]) if position is not None else 0
    losses: list[float] = position["losses"].tolist() if position is not None else []
    run.sampler.skip = done * run.batch_size
    batches = enumerate(run.loader, start=done + 1)  # the iterator draws its base seed from torch's RNG,
    if position is not None and state.rng is not None:  # as it did before the checkpoint
        restore_rng(state.rng)
    state.position = None
    for batch, (x, y) in batches:
        loss = train_step(run.parts, x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        state.step += 1
        losses.append(loss)
        run.observed.step(len(x))
        run.callbacks.after_step(state.step, loss)
        if batch % training.stop_check_batches == 0:
            stop = run.agreed_stop(run.stops.during_epoch())
            if stop is not None:  # resume goes on at the next batch of this epoch
                state.position = epoch_position(epoch, batch, losses)
                return losses, stop
        if step_checkpoint_due(training, state.step):
            checkpoint_step(run, epoch, batch, losses)
    return losses, None


def step_checkpoint_due(training: TrainingSection, step: int) -> bool:
    every_n_steps = training.checkpointing.every_n_steps if training.checkpointing.enabled else None
    return every_n_steps is not None and every_n_steps > 0 and step % every_n_steps == 0


def checkpoint_step(run: RankRun, epoch: int, batch: int, losses: list[float]) -> None:
    """A step checkpoint (rank 0's state after ``batch`` of ``epoch``), stored while training goes on."""
    state, monitor = run.state, run.training.monitor.metric
    ours = None if run.session.rank else training_state(
        run.parts, epoch - 1, state.tracker, state.early, state.best_model, step=state.step,
        position=epoch_position(epoch, batch, losses))
    report_step_checkpoint(run.session, {"epoch": epoch - 1, "step": state.step, monitor: math.nan,
                                         "status": "running"}, ours, run.observed)


def close_epoch(run: RankRun, epoch: int, losses: list[float], stop: StopReason | None,
                started: float) -> EpochResult:
    """Scheduler, validation, best model and stop rules: the epoch's metrics."""
    state, parts, monitor = run.state, run.parts, run.training.monitor.metric
    if state.position is None:  # the epoch ran to its end
        parts.scheduler.step()
    results = evaluate(parts, *run.validation, run.metric_fns)
    value = results[monitor]
    if stop is None:
        stop = stop_after_epoch(run, epoch, value)
    if state.best_model is None:
        state.best_model = cpu_state(parts.core)
    metrics = {
        "epoch": epoch if state.position is None else epoch - 1,  # epochs completed
        "train_loss": float(np.mean(losses)) if losses else math.nan,
        **results,
        f"best_{monitor}": state.tracker.best if state.tracker.best is not None else value,
        "lr": parts.optimizer.param_groups[0]["lr"],
        "epoch_time_s": time.time() - started,
        "status": (stop or StopReason.COMPLETED).value,
    }
    run.observed.epoch(metrics)
    return EpochResult(metrics, stop)


def stop_after_epoch(run: RankRun, epoch: int, value: float) -> StopReason | None:
    """Best so far, early stopping and the stop rules after a whole epoch, agreed by every rank."""
    state = run.state
    best_before = state.tracker.best
    improved = state.tracker.update(value, epoch)
    if improved:
        state.best_model = cpu_state(run.parts.core)
    stop = None
    if run.training.early_stopping.enabled and state.early.record(improved):
        stop = StopReason.EARLY_STOPPED
    return run.agreed_stop(stop or run.stops.after_epoch(value, best_before))


def epoch_checkpoint_due(training: TrainingSection, epoch: int, result: EpochResult) -> bool:
    """The last epoch, a stop (a preemption notice among them) or every ``frequency`` epochs."""
    final = result.stop is not None or epoch == training.num_epochs
    periodic = training.checkpointing.enabled and epoch % training.checkpointing.frequency == 0
    return final or periodic


def report_epoch(run: RankRun, epoch: int, result: EpochResult) -> None:
    """The epoch's metrics to the log and the callbacks, then reported, with a checkpoint when one is due."""
    metrics, state, session = result.metrics, run.state, run.session
    if session.rank == 0:  # before reporting: a Tune scheduler may end the trial inside report()
        log.info("epoch %d/%d %s", epoch, run.training.num_epochs,
                 " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    run.callbacks.after_epoch(metrics)
    if epoch_checkpoint_due(run.training, epoch, result):
        saved = training_state(run.parts, metrics["epoch"], state.tracker, state.early, state.best_model,
                               step=state.step, position=state.position)
        report_with_checkpoint(session, metrics, saved, run.observed)
    else:
        session.report(metrics, None, None)
    run.callbacks.after_report(metrics)
