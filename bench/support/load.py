"""Steady HTTP load on /v1/predict in the background, every outcome kept: the failed-request count of chaos tests.

``SteadyLoad`` keeps ``concurrency`` requests in flight from one asyncio loop on its own thread until stopped; each
answer (or exception: refused connection, reset, timeout) becomes an ``Outcome``. A request fails when it gets
anything but 200; nothing is retried on the client side, so what the server side does about a lost replica is
what the count shows.

``load_until_rollout`` runs such a load until the rollout reaches a status (a canary rolled back or promoted).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mlray.serve.api.schemas import FALLBACK_HEADER


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no HTTP answer (connection refused or reset, timeout)
    version: str | None  # the model version that answered a 200
    error: str = ""
    fallback_from: str | None = None  # a 200 from stable in place of this canary, which failed the request

    @property
    def ok(self) -> bool:
        return self.status == 200


class SteadyLoad:
    def __init__(
        self,
        base_url: str,
        body: dict[str, Any],
        concurrency: int = 8,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ):
        self.base_url = base_url
        self.body = body
        self.concurrency = concurrency
        self.headers = headers or {}
        self.timeout_s = timeout_s
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="steady-load", daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=self.timeout_s, headers=self.headers
        ) as client:
            await asyncio.gather(*(self._worker(client) for _ in range(self.concurrency)))

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                response = await client.post("/v1/predict", json=self.body)
            except httpx.HTTPError as exc:
                self.outcomes.append(Outcome(started, time.monotonic(), None, None, type(exc).__name__))
                continue
            version = response.json().get("model_version") if response.status_code == 200 else None
            error = "" if response.status_code == 200 else response.text[:200]
            self.outcomes.append(Outcome(started, time.monotonic(), response.status_code, version, error,
                                         response.headers.get(FALLBACK_HEADER)))

    # -- reading while it runs ---------------------------------------------------------
    def count(self, where: Callable[[Outcome], bool] = lambda _: True) -> int:
        return sum(1 for outcome in list(self.outcomes) if where(outcome))

    def failed(self, since: float = 0.0) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.started >= since and not o.ok]

    def answered_since(self, since: float) -> int:
        return self.count(lambda o: o.started >= since and o.ok)

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        window = [o for o in list(self.outcomes) if o.started >= since]
        failed = [o for o in window if not o.ok]
        return {
            "requests": len(window),
            "failed": len(failed),
            "failed_share": round(len(failed) / len(window), 5) if window else None,
            "failures": sorted({f"{o.status}: {o.error[:80]}" for o in failed})[:5],
        }


def load_until_rollout(
    base_url: str,
    body: dict[str, Any],
    status: str,
    timeout_s: float,
    concurrency: int = 8,
    headers: dict[str, str] | None = None,
    poll_s: float = 0.5,
) -> tuple[dict[str, Any], SteadyLoad, float]:
    """Steady load until ``GET /v1/rollout`` shows ``status``: that rollout view, the load (stopped) and the
    seconds from the load's start; TimeoutError naming the last view after ``timeout_s``."""
    with httpx.Client(base_url=base_url, headers=headers or {}, timeout=30) as client, \
            SteadyLoad(base_url, body, concurrency, headers) as load:
        onset = time.monotonic()
        view: dict[str, Any] = {}
        while time.monotonic() - onset < timeout_s:
            view = client.get("/v1/rollout").json()
            if view.get("status") == status:
                return view, load, time.monotonic() - onset
            time.sleep(poll_s)
    raise TimeoutError(f"rollout not {status} after {timeout_s:.0f} s: {view.get('status')}, {view.get('reason')}")
