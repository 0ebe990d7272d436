"""The rollout state in storage, so that a restarted controller carries on instead of starting over.

Each state is its own file, ``<storage.uri>/rollout-state/<app>/<epoch>-<generation>.json``,
written atomically (``Storage.write_text``). Nothing is overwritten by an older
state: a state lands under its own name, and readers take the highest
``(epoch, generation)`` whose file reads back whole. Each controller incarnation
claims an epoch above every file name it finds (even an unreadable one), so its
states order after everything an earlier incarnation wrote or told a replica.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mlray.serve.rollout.canary import RolloutState
from mlray.storage import Storage

log = logging.getLogger(__name__)

STATE_DIR = "rollout-state"
KEEP_FILES = 10  # the newest few stay, so an unreadable newest file still leaves a good one to fall back to
FILE_NAME = re.compile(r"^(\d+)-(\d+)\.json$")
STATE_ADAPTER = TypeAdapter(RolloutState)


def file_name(version: tuple[int, int]) -> str:
    epoch, generation = version
    return f"{epoch:012d}-{generation:012d}.json"


@dataclass
class StateRecord:
    """One persisted state and what it was derived from."""

    state: RolloutState
    config_digest: str  # models + rollout config the rollout started from (see controller.config_digest)
    code_version: str | None  # Serve's code version of the deployment that wrote it
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StateRecord:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return cls(
            state=STATE_ADAPTER.validate_python(data["state"]),
            config_digest=str(data["config_digest"]),
            code_version=data["code_version"],
            events=list(data.get("events", [])),
        )


@dataclass
class Recovery:
    """What a starting controller found: the newest readable record and how far versions went."""

    record: StateRecord | None
    unreadable_newer: list[str]  # files newer than ``record`` that could not be read
    highest_epoch: int = 0
    highest_generation: int = 0


class RolloutStore:
    def __init__(self, storage_uri: str, app: str):
        self.storage = Storage(storage_uri).child(STATE_DIR, app)

    def versions(self) -> list[tuple[int, int]]:
        """Versions present, newest first (names that are not state files are left alone)."""
        found = (FILE_NAME.match(name) for name in self.storage.list())
        return sorted(((int(m[1]), int(m[2])) for m in found if m), reverse=True)

    def recover(self) -> Recovery:
        """The newest state that reads back whole; unreadable ones are logged and skipped, never raised.

        Storage that cannot be listed at all raises: the caller cannot know which epoch is free.
        """
        versions = self.versions()
        recovery = Recovery(
            None,
            [],
            highest_epoch=max((e for e, _ in versions), default=0),
            highest_generation=max((g for _, g in versions), default=0),
        )
        for version in versions:
            name = file_name(version)
            try:
                record = StateRecord.from_json(self.storage.read_text(name))
                if record.state.version != version:
                    raise ValueError(f"holds version {record.state.version}, its name says {version}")
            except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
                log.warning("rollout state %s unreadable, ignored: %s: %s",
                            self.storage.url(name), type(exc).__name__, str(exc).splitlines()[0])  # fmt: skip
                recovery.unreadable_newer.append(name)
                continue
            recovery.record = record
            break
        return recovery

    def save(self, record: StateRecord) -> str:
        """Write the record under its own version; returns its URI. Older files beyond ``KEEP_FILES`` go."""
        uri = self.storage.write_text(file_name(record.state.version), record.to_json())
        for version in self.versions()[KEEP_FILES:]:
            try:
                self.storage.delete(file_name(version))
            except FileNotFoundError:  # pruned by another incarnation meanwhile
                continue
        return uri
