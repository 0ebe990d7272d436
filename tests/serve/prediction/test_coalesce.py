"""CallCoalescer: batches submitted while a call runs go into the next call, up to max_items."""

from __future__ import annotations

import asyncio
import logging

from mlray.serve.prediction.coalesce import CallCoalescer, HideBatchConcurrencyWarning


class Recorder:
    """A model call that records its inputs and can be held open until the test releases it."""

    def __init__(self, fail_on: int | None = None):
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_on = fail_on

    async def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        await self.release.wait()
        if self.fail_on in items:
            raise ValueError(f"item {self.fail_on}")
        return [item * 10 for item in items]


async def until(condition) -> None:  # noqa: ANN001 - a zero-argument predicate
    """Lets other tasks run until ``condition()`` holds (they only need the event loop, no time)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def run_while_first_call_is_held(batches: list[list[int]], max_items: int, fail_on: int | None = None):
    """Submits ``batches[0]``, holds its call, submits the rest, releases; returns (calls, results)."""

    async def scenario():
        record = Recorder(fail_on)
        coalescer: CallCoalescer[int] = CallCoalescer(record)
        record.release.clear()
        first = asyncio.create_task(coalescer.run(batches[0], max_items))
        await until(lambda: len(record.calls) == 1)
        rest = [asyncio.create_task(coalescer.run(batch, max_items)) for batch in batches[1:]]
        await until(lambda: coalescer.waiting == sum(map(len, batches[1:])))
        record.release.set()
        results = await asyncio.gather(first, *rest)
        return record.calls, results

    return asyncio.run(scenario())


def test_batches_formed_during_a_call_join_the_next_call():
    calls, results = run_while_first_call_is_held([[1], [2, 3], [4], [5, 6]], max_items=64)
    assert calls == [[1], [2, 3, 4, 5, 6]]
    assert results == [[10], [20, 30], [40], [50, 60]]


def test_a_call_takes_whole_batches_up_to_max_items():
    calls, results = run_while_first_call_is_held([[1], [2, 3], [4, 5], [6, 7], [8]], max_items=4)
    assert calls == [[1], [2, 3, 4, 5], [6, 7, 8]]
    assert results == [[10], [20, 30], [40, 50], [60, 70], [80]]


def test_a_batch_larger_than_max_items_runs_alone():
    calls, _ = run_while_first_call_is_held([[1], [2, 3, 4], [5]], max_items=2)
    assert calls == [[1], [2, 3, 4], [5]]


def test_a_failed_call_fails_only_its_own_batches():
    calls, results = run_while_first_call_is_held([[1], [2], [3], [4, 5]], max_items=2, fail_on=3)
    assert calls == [[1], [2, 3], [4, 5]]
    assert results[0] == [10] and results[3] == [40, 50]
    for failed in results[1:3]:
        assert all(isinstance(result, ValueError) for result in failed)


def test_a_lone_batch_runs_at_once():
    async def scenario():
        record = Recorder()
        coalescer: CallCoalescer[int] = CallCoalescer(record)
        return await coalescer.run([7, 8], max_items=1), record.calls

    assert asyncio.run(scenario()) == ([70, 80], [[7, 8]])


def test_only_rays_batch_concurrency_warning_is_hidden():
    keep = HideBatchConcurrencyWarning()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("ray.serve", logging.WARNING, __file__, 1, message, None, None)

    assert not keep.filter(record("`max_batch_size` (64) * `max_concurrent_batches` (128) is larger than ..."))
    assert keep.filter(record("Replica failed its health check"))
