"""The few collectives the loop needs, as no-ops when running as a single process."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def agree_max(value: int, device: torch.device) -> int:
    """The largest value any rank holds: how ranks agree that one of them wants to stop."""
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def broadcast_from_rank0(value: Any) -> Any:
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_concat(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's tensor concatenated along dim 0, on every rank (shards may differ in length)."""
    if not is_distributed():
        return tensor
    return torch.cat(all_gather_objects(tensor.detach().cpu())).to(tensor.device)


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not is_distributed():
        return [value]
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, value)
    return parts
