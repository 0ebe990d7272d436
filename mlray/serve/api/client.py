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
                except Exception as exc:  # noqa: BLE001 - returned: the caller counts it as a failed request
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


def answered(response: httpx.Response | Exception) -> bool:
    """Whether one of ``post_concurrently``'s results is a 200 response."""
    return isinstance(response, httpx.Response) and response.status_code == 200


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlray.serve.api.client URL``: a few rows of the preprocessed data, predicted online."""
    import argparse
    import json

    import pandas as pd

    from mlray.usecases import driver_trips

    parser = argparse.ArgumentParser(prog="python -m mlray.serve.api.client", description=main.__doc__)
    parser.add_argument("url", help="the Serve app, e.g. http://127.0.0.1:8000")
    parser.add_argument("--data", default="runs/storage/data/processed/training.parquet",
                        help="rows to send (jobs.preprocess writes them under storage.uri)")
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--api-key", default=None, help="sent as 'Authorization: Bearer KEY'")
    args = parser.parse_args(argv)
    rows = pd.read_parquet(args.data, columns=driver_trips.FEATURE_COLUMNS).head(args.count)
    headers = {"authorization": f"Bearer {args.api_key}"} if args.api_key else None
    response = httpx.post(f"{args.url}/v1/predict", json={"instances": rows.to_dict("records")}, headers=headers, timeout=60)
    print(json.dumps({"status_code": response.status_code, "body": response.json()}, indent=2))
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
