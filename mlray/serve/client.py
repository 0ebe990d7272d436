"""Concurrent HTTP load on /v1/predict: many requests in flight from one asyncio loop (demo, tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx


async def _post_all(
    base_url: str, bodies: Sequence[dict[str, Any]], concurrency: int, headers: Sequence[dict[str, str]] | None
) -> list[httpx.Response | Exception]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def one(index: int) -> httpx.Response | Exception:
            async with semaphore:
                try:
                    return await client.post(
                        "/v1/predict", json=bodies[index], headers=headers[index] if headers else None
                    )
                except Exception as exc:  # noqa: BLE001 - reported to the test as a failed request
                    return exc

        return await asyncio.gather(*(one(i) for i in range(len(bodies))))


def post_concurrently(
    base_url: str,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
    headers: Sequence[dict[str, str]] | None = None,
) -> list[httpx.Response | Exception]:
    """POST each body to ``/v1/predict``; a response (``.elapsed`` is its latency) or the exception, in order."""
    return asyncio.run(_post_all(base_url, bodies, concurrency, headers))
