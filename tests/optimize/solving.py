"""Helpers for tests that act on a solve while it runs: find its actors, run it in a thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ray
from ray.util.state import list_actors

from mlray.optimize.incumbent import StoreReport


def live_actors(dashboard_url: str, run_name: str, class_name: str) -> dict[str, str]:
    """Second part of the actor name (the arm's name, or ``incumbent-store``) -> Ray actor name,
    for the ALIVE actors of ``class_name`` that belong to one run."""
    alive = [("class_name", "=", class_name), ("state", "=", "ALIVE")]
    # An explicit address: "auto" fails when other Ray clusters run on the same machine.
    actors = list_actors(address=dashboard_url, filters=alive, detail=True)
    return {a.name.split(".")[1]: a.name for a in actors if a.name and a.name.startswith(f"{run_name}.")}


def actor_pid(dashboard_url: str, actor_name: str) -> int:
    """The process of a live actor, by its Ray actor name."""
    named = [("name", "=", actor_name), ("state", "=", "ALIVE")]
    (actor,) = list_actors(address=dashboard_url, filters=named, detail=True)
    return actor.pid


def store_report(run_name: str) -> StoreReport | None:
    """The running solve's store report, found by the store's actor name (None before it exists).
    From the solving driver's process: the store is named in its namespace."""
    names = [n for n in ray.util.list_named_actors() if n.startswith(f"{run_name}.incumbent-store.")]
    return ray.get(ray.get_actor(names[0]).report.remote()) if names else None


def split_to(report: StoreReport | None, arm: str) -> bool:
    """The latest CPU split gives ``arm`` every thread handed out."""
    if report is None or not report.allocation_history:
        return False
    threads = report.allocation_history[-1]["threads"]
    return threads.get(arm, 0) > 0 and all(count == 0 for name, count in threads.items() if name != arm)


def split_to_the_leader(run_name: str) -> StoreReport | None:
    """The store's report once the race is over and every thread went to the arm holding the incumbent."""
    report = store_report(run_name)
    if report is None or report.incumbent is None or report.incumbent.arm not in report.arm_nodes:
        return None
    return report if split_to(report, report.incumbent.arm) else None


def resplit_to_one_of(run_name: str, arms: list[str]) -> StoreReport | None:
    """The store's report once the threads went to one of ``arms``."""
    report = store_report(run_name)
    return report if any(split_to(report, arm) for arm in arms) else None


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
