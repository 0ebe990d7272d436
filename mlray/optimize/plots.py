"""PNG pictures of a solve: route maps, Gantt charts, incumbent and bound over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mlray.optimize.problems import JobShopProblem, JobShopSchedule, RoutePlan, RoutingProblem


def draw_routes(problem: RoutingProblem, plan: RoutePlan, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 7))
    colours = plt.get_cmap("tab20")
    for k, route in enumerate(plan.routes):
        points = [problem.coordinates[n] for n in (0, *route, 0)]
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, "-o", color=colours(k % 20), markersize=3, linewidth=1)
    depot = problem.coordinates[0]
    ax.plot(*depot, "ks", markersize=9, label="depot")
    ax.set_title(f"{problem.name}: {len(plan.routes)} routes")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best")
    return _save(fig, path)


def draw_gantt(problem: JobShopProblem, schedule: JobShopSchedule, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 0.4 * problem.num_machines + 1.5))
    colours = plt.get_cmap("tab20")
    for j, (job, starts) in enumerate(zip(problem.jobs, schedule.starts, strict=True)):
        for (machine, duration), start in zip(job, starts, strict=True):
            ax.broken_barh(
                [(start, duration)], (machine - 0.4, 0.8), facecolors=colours(j % 20), edgecolor="k"
            )
    ax.set_yticks(range(problem.num_machines), [f"M{m}" for m in range(problem.num_machines)])
    ax.set_xlabel("time")
    ax.set_title(f"{problem.name}: {len(problem.jobs)} jobs")
    return _save(fig, path)


def draw_history(
    history: list[dict[str, Any]],
    bound_history: list[dict[str, Any]],
    path: Path,
    best_known: float | None = None,
) -> Path:
    """Incumbent (a step per improvement, coloured by arm) and best bound over seconds."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if history:
        times = [h["time"] for h in history]
        values = [h["objective"] for h in history]
        ax.step(times, values, where="post", color="grey", linewidth=1)
        arms = sorted({h["arm"] for h in history})
        colours = plt.get_cmap("tab10")
        for i, arm in enumerate(arms):
            points = [(h["time"], h["objective"]) for h in history if h["arm"] == arm]
            ax.scatter(
                *zip(*points, strict=True), color=colours(i % 10), label=f"incumbent by {arm}", zorder=3
            )
    if bound_history:
        ax.step(
            [b["time"] for b in bound_history],
            [b["bound"] for b in bound_history],
            where="post",
            label="bound",
        )
    if best_known is not None:
        ax.axhline(best_known, linestyle="--", color="k", linewidth=0.8, label="best known")
    ax.set_xlabel("seconds")
    ax.set_ylabel("objective")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
