"""The elastic batch rule (no Ray): the global batch stays batch_size x max whatever the number of workers, so
a position counted in batches covers the same samples before and after a resize."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from mlray.config import TrainJobConfig
from mlray.config.loader import ConfigError
from mlray.train.loop import PositionedSampler
from mlray.train.runner import scaling_workers


def section(**training):
    return TrainJobConfig.model_validate({"training": training}).training


def test_each_worker_takes_an_equal_share_of_the_fixed_global_batch():
    training = section(num_workers=[1, 4], batch_size=16)
    assert training.worker_range == (1, 4) and training.world_size == 4
    assert {n: training.worker_batch_size(n) for n in (1, 2, 4)} == {1: 64, 2: 32, 4: 16}
    assert scaling_workers(training) == (1, 4)  # Ray Train's elastic policy
    fixed = section(num_workers=3, batch_size=16)
    assert fixed.worker_range == (3, 3) and fixed.worker_batch_size(3) == 16 and scaling_workers(fixed) == 3
    assert scaling_workers(section(num_workers=[2, 2])) == 2


@pytest.mark.parametrize("value", [[3, 2], [0, 2], [1, 2, 3]])
def test_a_worker_range_must_be_min_then_max(value):
    with pytest.raises((ValueError, ConfigError), match="num_workers"):
        section(num_workers=value)


def consumed(world: int, batch: int, batches_done: int, epoch: int, size: int) -> tuple[set[int], set[int]]:
    """(indices the ranks of a ``world``-rank run took in ``batches_done`` batches, those left in the epoch)."""
    dataset = TensorDataset(torch.arange(size))
    done, left = set(), set()
    for rank in range(world):
        sampler = PositionedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=7)
        sampler.set_epoch(epoch)
        order = list(sampler)
        done.update(order[: batches_done * batch])
        sampler.skip = batches_done * batch
        left.update(sampler)
    return done, left


@pytest.mark.parametrize(("before", "after"), [(4, 2), (2, 4), (4, 1)])
def test_a_resize_mid_epoch_goes_on_with_the_samples_not_yet_seen(before, after):
    training = section(num_workers=[1, 4], batch_size=8)
    size, batches_done = 8 * 4 * 10, 3  # ten global batches
    done_before, _ = consumed(before, training.worker_batch_size(before), batches_done, 5, size)
    done_after, left_after = consumed(after, training.worker_batch_size(after), batches_done, 5, size)
    assert len(done_before) == batches_done * 32
    assert done_before == done_after  # the same samples count as done at the new size,
    assert left_after == set(range(size)) - done_before  # and the rest of the epoch is exactly the others
