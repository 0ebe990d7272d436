"""An incumbent and its checkpoint: the JSON file a solve writes and a rerun with the same run name reads.

Every improvement is written to storage as JSON (atomically, via
``Storage.open_atomic``) by ``CheckpointWriter``, on its own thread, so the incumbent store never waits
on storage (gcsfs retries an unreachable server for about a minute per request): a failed write is
reported as an incident and retried after ``retry_interval`` with the newest content, and a write still
unanswered after ``write_timeout`` is reported as such. ``load_checkpoint`` reads one back; a
checkpoint that cannot be read or parsed raises ``CheckpointError``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlray.storage import Storage

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "incumbent.json"
FROM_CHECKPOINT = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint exists but cannot be used (unreadable, truncated, or not a checkpoint)."""


@dataclass(frozen=True)
class Incumbent:
    objective: int
    payload: dict[str, Any]
    arm: str


@dataclass(frozen=True)
class CheckpointTarget:
    storage: Storage
    fingerprint: str
    interval: float  # seconds between writes at most
    write_timeout: float  # seconds before an unanswered write is reported (it goes on in the background)
    retry_interval: float  # seconds before a failed write is tried again


def read_checkpoint(storage: Storage, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint's content when one exists for this very problem.

    Raises ``CheckpointError`` when it exists but cannot be read or parsed.
    """
    url = storage.url(CHECKPOINT_FILE)
    try:
        if not storage.exists(CHECKPOINT_FILE):
            return None
        text = storage.read_text(CHECKPOINT_FILE)
    except Exception as exc:  # noqa: BLE001 - local and GCS backends raise assorted errors
        raise CheckpointError(f"checkpoint {url}: unreadable: {_first_line(exc)}") from None
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(
            f"checkpoint {url}: not valid JSON (truncated or damaged, {len(text)} bytes): {exc}"
        ) from None
    if not isinstance(content, dict):
        raise CheckpointError(f"checkpoint {url}: expected a JSON object, got {type(content).__name__}")
    if content.get("fingerprint") != fingerprint:
        log.warning("checkpoint %s is for another problem; ignored", url)
        return None
    for key, expected in (("objective", int), ("payload", dict), ("arm", str)):
        if not isinstance(content.get(key), expected) or isinstance(content.get(key), bool):
            raise CheckpointError(
                f"checkpoint {url}: {key}: expected {expected.__name__}, got {content.get(key)!r:.80}"
            )
    if content.get("bound") is not None and not isinstance(content["bound"], int):
        raise CheckpointError(
            f"checkpoint {url}: bound: expected an integer or null, got {content['bound']!r:.80}"
        )
    return content


def load_checkpoint(storage: Storage, fingerprint: str) -> tuple[Incumbent, int | None] | None:
    """The checkpointed incumbent and bound, if one exists for this very problem."""
    content = read_checkpoint(storage, fingerprint)
    if content is None:
        return None
    return Incumbent(content["objective"], content["payload"], FROM_CHECKPOINT), content.get("bound")


class CheckpointWriter:
    """Writes checkpoints on its own thread, always the newest content, so the store never waits."""

    def __init__(self, target: CheckpointTarget, incident: Callable[[str], None]) -> None:
        self.target = target
        self.url = target.storage.url(CHECKPOINT_FILE)
        self._incident = incident
        self._changed = threading.Condition()
        self._pending: dict[str, Any] | None = None
        self._writing_since: float | None = None
        self._stall_reported = False
        self._retry_at = 0.0
        self._failed_attempts = 0  # since the last successful write
        self.writes = 0
        threading.Thread(target=self._run, name="checkpoint-writer", daemon=True).start()

    def submit(self, content: dict[str, Any]) -> None:
        with self._changed:
            self._pending = content
            self._changed.notify_all()

    @property
    def busy(self) -> bool:
        return self._pending is not None or self._writing_since is not None

    def check_stalled(self) -> None:
        with self._changed:
            since = self._writing_since
            if since is None or self._stall_reported or time.monotonic() - since < self.target.write_timeout:
                return
            self._stall_reported = True
            self._failed_attempts += 1
        self._incident(
            f"checkpoint write to {self.url} unanswered after {self.target.write_timeout:g} s; "
            "still trying in the background, the solve goes on"
        )

    def wait_idle(self, timeout: float) -> bool:
        """Write what is pending now (no retry delay) and wait up to ``timeout`` s; True if all is written."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._retry_at = 0.0
            self._changed.notify_all()
            while self.busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._pending is None or time.monotonic() < self._retry_at:
                    self._changed.wait(None if self._pending is None else self._retry_at - time.monotonic())
                content, self._pending = self._pending, None
                self._writing_since, self._stall_reported = time.monotonic(), False
            try:
                self.target.storage.write_text(CHECKPOINT_FILE, json.dumps(content))
            except Exception as exc:  # noqa: BLE001 - any storage error: keep serving, retry later
                with self._changed:
                    if not self._stall_reported:  # an unanswered attempt was counted already
                        self._failed_attempts += 1
                    if self._pending is None:  # nothing newer came in meanwhile: retry this one
                        self._pending = content
                    self._retry_at = time.monotonic() + self.target.retry_interval
                self._incident(
                    f"checkpoint write to {self.url} failed ({_first_line(exc)}); "
                    f"retrying in {self.target.retry_interval:g} s, the solve goes on"
                )
            else:
                with self._changed:
                    self.writes += 1
                    recovered, self._failed_attempts = self._failed_attempts, 0
                if recovered:
                    self._incident(
                        f"checkpoint written to {self.url} again (objective {content['objective']}) "
                        f"after {recovered} failed or unanswered attempt(s)"
                    )
            finally:
                with self._changed:
                    self._writing_since = None
                    self._changed.notify_all()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
