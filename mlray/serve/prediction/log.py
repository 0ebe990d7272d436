"""Sampled prediction logging: JSON lines under ``prediction_log.sink`` (local or ``gs://``).

Each replica buffers sampled records and publishes one file per flush,
``<sink>/<YYYY-MM-DD>/<replica>-<unix ms>-<seq>.jsonl``, atomically through
``Storage``, so readers never see half a file. Headers (and so API keys) are
never recorded.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from mlray.config.inference import PredictionLogSection
from mlray.storage import Storage


class PredictionLog:
    def __init__(self, section: PredictionLogSection, replica_id: str, rng: random.Random | None = None):
        self.section = section
        self.replica_id = replica_id.replace("/", "_").replace("#", "_")
        self.storage = Storage(section.sink) if section.sink and section.sample_rate > 0 else None
        self.rng = rng or random.Random()
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._files = 0

    @property
    def enabled(self) -> bool:
        return self.storage is not None

    def maybe_record(self, version: str, instances: list[Any], predictions: list[Any], latency_ms: float) -> None:
        if self.storage is None or self.rng.random() >= self.section.sample_rate:
            return
        record = {
            "ts": datetime.now(UTC).isoformat(),
            "version": version,
            "instances": instances,
            "predictions": predictions,
            "latency_ms": round(latency_ms, 3),
        }
        with self._lock:
            self._buffer.append(record)

    def flush_if_due(self) -> int:
        with self._lock:
            due = len(self._buffer) >= self.section.flush_every or (
                self._buffer and time.monotonic() - self._last_flush >= self.section.flush_interval_s
            )
        return self.flush() if due else 0

    def flush(self) -> int:
        """Write buffered records as one file; returns how many."""
        with self._lock:
            records, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
        if not records or self.storage is None:
            return 0
        self._files += 1
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        name = f"{day}/{self.replica_id}-{int(time.time() * 1000)}-{self._files}.jsonl"
        self.storage.write_text(name, "".join(json.dumps(r, default=str) + "\n" for r in records))
        return len(records)
