"""The training loop every rank runs: DDP over sharded data, validation, checkpoints, stop rules.

It knows nothing about Ray: a ``Session`` (Ray Train worker, Tune trial or a
plain process) reports and stores checkpoints, so the same code runs under Ray
Train, Ray Tune, torchrun and the GPU check.
"""

from __future__ import annotations

import itertools
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from mlray.config.train import TrainJobConfig
from mlray.metrics.train import TrainMetrics
from mlray.models import ModelSpec
from mlray.train.checkpoint import (capture_rng, checkpoint_dir_name, checkpoint_files, detached_copy, first_valid,
                                    restore_rng, write_checkpoint)
from mlray.train.distributed import (agree_max, all_gather_objects, broadcast_from_rank0, gather_concat,
                                     is_distributed)
from mlray.train.metrics import resolve_metrics
from mlray.train.prepare import PreparedData
from mlray.train.session import Session
from mlray.train.stopping import EarlyStopping, MetricTracker, StopReason, TrainingStops

log = logging.getLogger("mlray.train")

EpochHook = Callable[[dict[str, Any]], None]


@dataclass
class LoopSettings:
    """Everything a rank needs besides the data, picklable for Ray."""

    config: TrainJobConfig
    spec: ModelSpec
    run_started: float = field(default_factory=time.time)


@dataclass
class TrainingParts:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    amp: bool

    @property
    def core(self) -> nn.Module:
        """The model without its DDP wrapper: what checkpoints and bundles hold."""
        return getattr(self.model, "module", self.model)


def build_parts(settings: LoopSettings, device: torch.device) -> TrainingParts:
    training = settings.config.training
    model = settings.spec.build().to(device)
    if is_distributed():
        device_ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=training.lr_decay)
    amp = training.amp and device.type == "cuda"
    loss_fn = nn.functional.cross_entropy if settings.spec.task == "classification" else _regression_loss
    return TrainingParts(model, optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=amp), loss_fn, amp)


def _regression_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(outputs.view(-1), targets.float())


def train_step(parts: TrainingParts, x: torch.Tensor, y: torch.Tensor) -> float:
    """One optimisation step (autocast + scaled gradients when AMP is on)."""
    parts.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, enabled=parts.amp):
        loss = parts.loss_fn(parts.model(x), y)
    parts.scaler.scale(loss).backward()
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    return float(loss.detach())


@torch.no_grad()
def evaluate(parts: TrainingParts, x: torch.Tensor, y: torch.Tensor, metrics: dict[str, Any]) -> dict[str, float]:
    """Validation on this rank's shard, gathered so every rank computes the metrics on the whole set."""
    parts.model.eval()
    with torch.autocast(device_type=x.device.type, enabled=parts.amp):
        outputs = parts.core(x).float()
    parts.model.train()
    outputs, targets = gather_concat(outputs), gather_concat(y)
    results = {"val_loss": float(parts.loss_fn(outputs, targets))}
    results.update({key: float(fn(outputs.cpu(), targets.cpu())) for key, fn in metrics.items()})
    return results


def training_state(parts: TrainingParts, epoch: int, tracker: MetricTracker, early: EarlyStopping,
                   best_model: dict[str, torch.Tensor] | None, *, step: int = 0,
                   position: dict[str, Any] | None = None) -> dict[str, Any]:
    """``epoch``: epochs completed; ``position``: where the epoch in progress stands, None at its start."""
    return {
        "epoch": epoch,
        "step": step,
        "position": position,
        "model": _cpu_state(parts.core),
        "best_model": best_model,
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "best_metric": tracker.best,
        "best_epoch": tracker.best_epoch,
        "early_stopping": early.state_dict(),
    }


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


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


def train_loop(settings: LoopSettings, data: PreparedData, session: Session, on_epoch: EpochHook | None = None) -> dict[str, Any]:
    """Run epochs until done or a stop rule fires; returns the last reported metrics."""
    config, training = settings.config, settings.config.training
    device, rank, world_size = session.device, session.rank, session.world_size
    torch.manual_seed(training.seed + rank)
    np.random.seed(training.seed + rank)
    parts = build_parts(settings, device)
    observed = TrainMetrics(config.monitoring.enable_metrics, config.run_name, rank)
    metrics_fns = resolve_metrics(training.metrics)
    tracker = MetricTracker(training.monitor.mode, training.early_stopping.min_delta)
    early = EarlyStopping(training.early_stopping.patience)
    stops = TrainingStops.from_config(config.timeouts, training.monitor.mode, settings.run_started)
    best_model: dict[str, torch.Tensor] | None = None
    start_epoch = 1
    step = 0  # optimizer steps taken over the whole run
    position: dict[str, Any] | None = None  # where the resumed epoch stopped, if it stopped inside

    loaded = first_valid(session.checkpoint_candidates(), rank)
    chosen = broadcast_from_rank0(loaded.name if loaded else None)
    if chosen != (loaded.name if loaded else None):  # ranks on different states would train apart silently
        raise RuntimeError(f"rank {rank} would resume from {loaded.name if loaded else None}, rank 0 from {chosen}")
    if loaded is not None:
        state = loaded.state
        parts.core.load_state_dict(state["model"])
        parts.optimizer.load_state_dict(state["optimizer"])
        parts.scheduler.load_state_dict(state["scheduler"])
        parts.scaler.load_state_dict(state["scaler"])
        tracker.best, tracker.best_epoch = state["best_metric"], state["best_epoch"]
        early.load_state_dict(state["early_stopping"])
        best_model = state["best_model"]
        step, position = int(state.get("step", 0)), state.get("position")
        start_epoch = position["epoch"] if position else state["epoch"] + 1
        observed.resumed()
        if loaded.rng is not None and position is None:
            restore_rng(loaded.rng)
        if rank == 0:
            log.info("resumed from checkpoint %s: continuing at epoch %d, step %d", loaded.name, start_epoch,
                     step + 1)

    # copies: arrays from Ray's object store are read-only
    train_set = TensorDataset(torch.from_numpy(data.x_train.copy()), torch.from_numpy(data.y_train.copy()))
    sampler = PositionedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=training.seed)
    # Elastic: the global batch stays the same whatever the number of ranks, so a position counted in
    # batches covers the same samples after a resize (DistributedSampler interleaves one permutation).
    batch_size = training.worker_batch_size(world_size)
    loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler)
    x_val = torch.from_numpy(_shard(data.x_val, rank, world_size)).to(device)
    y_val = torch.from_numpy(_shard(data.y_val, rank, world_size)).to(device)

    def agreed_stop(local: StopReason | None) -> StopReason | None:
        """Every rank must agree, or the collectives of the next step would hang."""
        if session.stop_requested():
            local = StopReason.PREEMPTED
        return StopReason.by_code(agree_max(local.code if local else 0, device))

    monitor = training.monitor.metric
    frequency = training.checkpointing.frequency
    every_n_steps = training.checkpointing.every_n_steps if training.checkpointing.enabled else None
    preemption_saved = False
    last: dict[str, Any] = {"epoch": start_epoch - 1, "status": StopReason.COMPLETED.value}
    if rank == 0 and on_epoch is not None:
        on_epoch({"start_epoch": start_epoch, "skipped_checkpoints": len(loaded.skipped) if loaded else 0})
    for epoch in range(start_epoch, training.num_epochs + 1):
        epoch_started = time.time()
        stops.start_epoch()
        sampler.set_epoch(epoch)
        resuming = position is not None and position["epoch"] == epoch
        done = int(position["batches"]) if resuming else 0
        losses: list[float] = position["losses"].tolist() if resuming else []
        sampler.skip = done * batch_size
        batches = enumerate(loader, start=done + 1)  # the iterator draws its base seed from torch's RNG,
        if resuming and loaded is not None and loaded.rng is not None:  # as it did before the checkpoint
            restore_rng(loaded.rng)
        position = None
        stop: StopReason | None = None
        for batch, (x, y) in batches:
            loss = train_step(parts, x.to(device, non_blocking=True), y.to(device, non_blocking=True))
            step += 1
            losses.append(loss)
            observed.step(len(x))
            session.record_step(step, loss)
            if batch % training.stop_check_batches == 0:
                stop = agreed_stop(stops.during_epoch())
                if stop is not None:  # resume goes on at the next batch of this epoch
                    position = epoch_position(epoch, batch, losses)
                    break
            if every_n_steps and step % every_n_steps == 0:
                ours = None if rank else training_state(parts, epoch - 1, tracker, early, best_model, step=step,
                                                        position=epoch_position(epoch, batch, losses))
                report_step_checkpoint(session, {"epoch": epoch - 1, "step": step, monitor: math.nan,
                                                 "status": "running"}, ours, observed)
        if position is None:  # the epoch ran to its end
            parts.scheduler.step()
        completed_epoch = epoch if position is None else epoch - 1
        results = evaluate(parts, x_val, y_val, metrics_fns)
        value = results[monitor]
        if stop is None:
            best_before = tracker.best
            improved = tracker.update(value, epoch)
            if improved:
                best_model = _cpu_state(parts.core)
            if training.early_stopping.enabled and early.record(improved):
                stop = StopReason.EARLY_STOPPED
            stop = agreed_stop(stop or stops.after_epoch(value, best_before))
        if best_model is None:
            best_model = _cpu_state(parts.core)
        notice = not preemption_saved and session.preemption_notice()
        preemption_saved = preemption_saved or notice
        metrics = {
            "epoch": completed_epoch,
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            **results,
            f"best_{monitor}": tracker.best if tracker.best is not None else value,
            "lr": parts.optimizer.param_groups[0]["lr"],
            "epoch_time_s": time.time() - epoch_started,
            "status": (stop or StopReason.COMPLETED).value,
        }
        observed.epoch(metrics, notice)
        if rank == 0:  # before reporting: a Tune scheduler may end the trial inside report()
            log.info("epoch %d/%d %s", epoch, training.num_epochs,
                     " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
            if on_epoch is not None:
                on_epoch(metrics)
        final = stop is not None or epoch == training.num_epochs
        periodic = training.checkpointing.enabled and epoch % frequency == 0
        if final or periodic or notice:
            state = training_state(parts, completed_epoch, tracker, early, best_model, step=step, position=position)
            report_with_checkpoint(session, metrics, state, observed)
        else:
            session.report(metrics, None, None)
        last = metrics
        if stop is not None:
            if rank == 0:
                log.warning("stopping at epoch %d: %s", epoch, stop.value)
            session.after_stop()
            break
    observed.finished()
    return last


def report_with_checkpoint(session: Session, metrics: dict[str, Any], state: dict[str, Any],
                           observed: TrainMetrics | None = None) -> None:
    """Every rank writes its RNG state, rank 0 the training state; Ray merges the folders."""
    name = broadcast_from_rank0(checkpoint_dir_name(state["epoch"], state.get("step", 0)))
    state = {**state, "world_size": session.world_size}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlray-ckpt-") as local:
        write_checkpoint(Path(local), state if session.rank == 0 else None, session.rank)
        session.report(metrics, Path(local), name)
        if observed is not None:  # report() returns once the checkpoint is in storage
            size = sum(path.stat().st_size for path in Path(local).rglob("*") if path.is_file())
            observed.checkpoint(size, time.monotonic() - started)


def report_step_checkpoint(session: Session, metrics: dict[str, Any], state: dict[str, Any] | None,
                           observed: TrainMetrics | None = None) -> None:
    """A checkpoint inside an epoch (``state``: rank 0's, None elsewhere), stored while training goes on.

    All the training thread does: copy rank 0's state, and one collective that brings every rank's RNG
    state, the folder name and whether to register to every rank. Rank 0's session serializes and stores
    the whole checkpoint on its own thread (the replicas' model and optimizer are rank 0's, so only their
    RNG states travel); a checkpoint reaches storage complete, ``META_FILE`` last.
    """
    started = time.monotonic()
    mine: tuple[dict[str, Any], str | None, bool] = (capture_rng(), None, False)
    if state is not None:
        state = detached_copy({**state, "world_size": session.world_size})
        mine = (mine[0], checkpoint_dir_name(state["epoch"], state["step"]), session.can_register_now())
    gathered = all_gather_objects(mine)
    _, name, register = gathered[0]
    files = None
    if state is not None:
        rngs, waited = [rng for rng, _, _ in gathered], time.monotonic() - started

        def files() -> dict[str, bytes]:  # on the session's thread
            encoded = checkpoint_files(state, rngs)
            if observed is not None:  # what training waited for, not the storing
                observed.checkpoint(sum(len(data) for data in encoded.values()), waited)
            return encoded
    session.report_step_checkpoint(metrics, name, files, register)
