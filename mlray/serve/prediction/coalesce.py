"""One model call at a time, as large as what is waiting: batches formed while the model runs join the next call.

``@serve.batch`` forms a batch as soon as its wait timeout ends, even while the previous batch is still
running; ``max_concurrent_batches`` only limits how many run at once, the others wait already formed. Under
steady load the batches it forms are therefore small: measured on 2 CPUs behind Ray's HAProxy at 64
concurrent requests, batches of 4 while about 60 requests waited, each batch paying a whole model call.
Handing every formed batch to a ``CallCoalescer`` (``max_concurrent_batches`` high enough that none waits
at Serve's semaphore) runs one call at a time over everything waiting when the model frees up, up to
``max_items``. Under light load nothing waits and each batch runs as formed, with no added delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class CallCoalescer(Generic[Item]):
    """Runs ``call`` on one list of items at a time; items submitted while it runs go into the next list.

    ``call`` maps a list of items to one result per item, in order; an exception it raises becomes the
    result of each item of that call only.
    """

    def __init__(self, call: Callable[[list[Item]], Awaitable[Sequence[Any]]]):
        self._call = call
        self._lock = asyncio.Lock()
        self._waiting: list[tuple[list[Item], asyncio.Future[list[Any]]]] = []

    async def run(self, items: list[Item], max_items: int) -> list[Any]:
        """Results for ``items``, from a call that may also carry other batches (``max_items`` in all at most).

        A batch is never split: one larger than ``max_items`` runs in a call of its own.
        """
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        async with self._lock:
            while not future.done():  # earlier batches may fill the calls ahead of ours
                await self._call_next(max_items)
        return future.result()

    async def _call_next(self, max_items: int) -> None:
        taken = [self._waiting.pop(0)]
        size = len(taken[0][0])
        while self._waiting and size + len(self._waiting[0][0]) <= max_items:
            size += len(self._waiting[0][0])
            taken.append(self._waiting.pop(0))
        items = [item for batch, _ in taken for item in batch]
        try:
            results = list(await self._call(items))
        except asyncio.CancelledError:
            for _, future in taken:  # their runners find them done, not lost from the waiting list
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - the failure of this call, given to the batches in it
            results = [exc] * len(items)
        offset = 0
        for batch, future in taken:
            future.set_result(results[offset : offset + len(batch)])
            offset += len(batch)

    @property
    def waiting(self) -> int:
        """Items submitted and not yet in a call."""
        return sum(len(batch) for batch, _ in self._waiting)


class HideBatchConcurrencyWarning(logging.Filter):
    """Drops Ray's warning that ``max_batch_size * max_concurrent_batches`` exceeds ``max_ongoing_requests``.

    Ray reads that product as the requests a replica could batch at once. In front of a ``CallCoalescer``
    the formed batches only wait to join one call of at most ``max_batch_size``, so the warning is wrong
    there; install this on the ``ray.serve`` logger of a replica that uses one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "max_concurrent_batches" not in record.getMessage()
