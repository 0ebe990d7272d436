"""What one rank trains with: the model (DDP-wrapped when distributed), optimizer, scheduler, AMP scaler
and loss; one training step, validation, and the training state a checkpoint holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mlray.config.train import TrainJobConfig
from mlray.models import ModelSpec
from mlray.train.distributed import gather_concat, is_distributed
from mlray.train.stopping import EarlyStopping, MetricTracker


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
        "model": cpu_state(parts.core),
        "best_model": best_model,
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "best_metric": tracker.best,
        "best_epoch": tracker.best_epoch,
        "early_stopping": early.state_dict(),
    }


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
