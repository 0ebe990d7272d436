"""Helpers for tests that act on a solve while it runs: find its actors, run it in a thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ray.util.state import list_actors


def live_actors(dashboard_url: str, run_name: str, class_name: str) -> dict[str, str]:
    """Second part of the actor name (the arm's name, or ``incumbent-store``) -> Ray actor name,
    for the ALIVE actors of ``class_name`` that belong to one run."""
    alive = [("class_name", "=", class_name), ("state", "=", "ALIVE")]
    # An explicit address: "auto" fails when other Ray clusters run on the same machine.
    actors = list_actors(address=dashboard_url, filters=alive, detail=True)
    return {a.name.split(".")[1]: a.name for a in actors if a.name and a.name.startswith(f"{run_name}.")}


def checkpoint_file(config: Any) -> Path:
    """The incumbent checkpoint of a run whose ``storage.uri`` is a local folder."""
    return Path(config.storage.uri) / config.run_name / "optimize" / "incumbent.json"


class BackgroundSolve:
    """``optimizer.parallel_solve(problem)`` on a thread; ``result()`` joins it (and re-raises)."""

    def __init__(self, optimizer: Any, problem: Any) -> None:
        self._outcome: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, args=(optimizer, problem), daemon=True)
        self._thread.start()

    def _run(self, optimizer: Any, problem: Any) -> None:
        try:
            self._outcome["result"] = optimizer.parallel_solve(problem)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._outcome["error"] = exc

    def result(self, timeout: float) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the solve did not end within {timeout:.0f} s"
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["result"]
