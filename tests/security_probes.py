"""Security probes: each attack or fault a test performs, with what was expected and what was observed.

Tests marked ``security`` take the ``security_probe`` fixture and call it once per probe *after* the
behaviour was asserted, with the value they actually saw. When ``MLRAY_SECURITY_PROBES`` names a file,
the session writes every recorded probe there as JSON; ``python -m tests.security_report`` runs the
security tests that way and renders ``docs/security.md`` from the file, so the table shows what the
tests observed, never what someone typed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

PROBES_ENV = "MLRAY_SECURITY_PROBES"


@dataclass(frozen=True)
class Probe:
    area: str  # the issue item it belongs to, e.g. "serving auth", "cluster", "optimization storage"
    probe: str  # what the attacker or the fault did
    expected: str  # what the platform must do
    observed: str  # what the test saw (status code, exception, value read back)
    test: str  # the pytest node id that made it


class ProbeRecorder:
    def __init__(self) -> None:
        self.probes: list[Probe] = []

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(p) for p in self.probes], indent=1))


RECORDER = ProbeRecorder()


def probes_path() -> Path | None:
    value = os.environ.get(PROBES_ENV)
    return Path(value) if value else None


def read_probes(path: Path) -> list[Probe]:
    return [Probe(**item) for item in json.loads(path.read_text())]
