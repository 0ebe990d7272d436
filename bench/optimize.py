"""Portfolio vs single solvers, same wall time and CPUs, on named instance sets.

``python -m bench.optimize [--set NAME ...] [--seeds N] [--time-limit S] [--cpus N] [--only NAME ...]``

Sets (``--set``; several may be given): ``default`` (the 16 instances of the first benchmark),
``quick`` (4 of them, 5 s), ``jobshop`` (Lawrence la01-la40 and Taillard ta01-ta30, 70 instances),
``x`` (every shipped X instance with at most 300 customers), ``scale`` (X-n1001-k43 and the
1,000-customer Gehring-Homberger VRPTW C1_10_2, R1_10_2; bench/optimize_scale.py measures their costs).
Best-known values and sources: mlray/optimize/instances/SOURCES.md. No default of the solver was
tuned on the ``jobshop``, ``x`` or ``scale`` sets.

Contenders per instance and seed, each given the same search time and ``--cpus`` CPUs: the
portfolio with sharing, the same arms without sharing, and the single solvers (CP-SAT with
``num_workers = cpus`` for job shop; one OR-Tools GLS run and one PyVRP run for routing). The
portfolios run with the default ``solver.race_fraction``: ``cpus`` arms race on one thread each,
then the leader gets the threads it can use; the threads in use never exceed ``cpus``.

Cells are the gap to the best-known value in %, the mean over the seeds. Per set: the mean gap of
each contender, the ratio of the portfolio's mean gap to each single solver's, the (instance, seed)
pairs where the portfolio is worse than that single solver by more than 0.5 points, and the peak
resident memory of the Ray worker processes during any run of the set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlray.optimize import instances

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = PROJECT_ROOT / "runs" / "bench-optimize"
DEFAULT = {
    "jsp": ["ft10", "ft20", "la16", "la17", "la18", "la19", "la20", "ta01"],
    "cvrp": ["X-n101-k25", "X-n106-k14", "X-n110-k13", "X-n120-k6", "X-n157-k13"],
    "vrptw": ["C101", "R101", "RC101"],
}
QUICK = {"jsp": ["ft10", "la16"], "cvrp": ["X-n101-k25"], "vrptw": ["C101"]}
SCALE = {"cvrp": ["X-n1001-k43"], "vrptw": ["C1_10_2", "R1_10_2"]}
WORSE_BY_POINTS = 0.5
COLUMNS = ["sharing", "no sharing", "single CP-SAT", "single GLS", "single PyVRP"]


def x_instances(max_customers: int = 300) -> list[str]:
    """Shipped X instances (``X-n<nodes>-k<min vehicles>``) with at most ``max_customers`` customers."""
    names = [Path(n).stem for n in instances.available() if Path(n).name.startswith("X-n")]
    return sorted((n for n in names if int(n.split("-")[1][1:]) - 1 <= max_customers), key=_nodes)


def _nodes(name: str) -> int:
    return int(name.split("-")[1][1:])


def instance_sets() -> dict[str, dict[str, list[str]]]:
    """Set name -> group (``jsp``, ``cvrp``, ``vrptw``) -> instance names."""
    return {
        "default": DEFAULT,
        "quick": QUICK,
        "jobshop": {"jsp": [f"la{i:02d}" for i in range(1, 41)] + [f"ta{i:02d}" for i in range(1, 31)]},
        "x": {"cvrp": x_instances()},
        "scale": SCALE,
    }


def instance_paths(set_names: list[str]) -> list[tuple[str, str, Path]]:
    """(set, group, path) of every instance of the named sets, in order."""
    sets = instance_sets()
    unknown = [name for name in set_names if name not in sets]
    if unknown:
        raise SystemExit(f"--set: expected names from {sorted(sets)}, got {unknown}")
    return [
        (set_name, group, instances.path(name))
        for set_name in set_names
        for group, names in sets[set_name].items()
        for name in names
    ]


def contenders(group: str, cpus: int) -> dict[str, dict[str, Any]]:
    """Contender name -> solver section overrides."""
    portfolio = {"num_actors": cpus, "cpus_per_actor": 1}
    if group == "jsp":
        single = {
            "single CP-SAT": {
                "arms": [{"kind": "cp_sat", "options": {"num_workers": cpus}}],
                "cpus_per_actor": cpus,
            }
        }
    else:
        first = "PARALLEL_CHEAPEST_INSERTION" if group == "vrptw" else "PATH_CHEAPEST_ARC"
        gls = {
            "kind": "routing",
            "options": {"first_solution": first, "metaheuristic": "GUIDED_LOCAL_SEARCH"},
        }
        single = {
            "single GLS": {"arms": [gls], "cpus_per_actor": cpus},
            "single PyVRP": {"arms": [{"kind": "pyvrp"}], "cpus_per_actor": cpus},
        }
    return {
        "sharing": {**portfolio, "sharing": True},
        "no sharing": {**portfolio, "sharing": False},
        **single,
    }


def solve(path: Path, solver: dict[str, Any], time_limit: float, run_dir: Path, **sections: Any) -> Any:
    """One solve through the public API; ``sections`` override whole config sections (e.g. ``spot``)."""
    from mlray.config.optimize import OptimizeJobConfig
    from mlray.optimize import optimizer_for, read_problem

    config = OptimizeJobConfig.model_validate(
        {
            "run_name": "bench",
            "solver": {"time_limit": time_limit, **solver},
            "timeouts": {"total_runtime": None, "iteration": None},
            "spot": {"enabled": False},
            "checkpoint": {"resume": False},
            "mlflow": {"enabled": False},
            "output": {"plots": False, "dir": str(run_dir)},
            "storage": {"uri": str(run_dir / "storage")},
            **sections,
        }
    )
    problem = read_problem(path)
    return optimizer_for(problem, config).parallel_solve(problem)


@dataclass
class ProcessWatch:
    """Samples this driver's Ray actor processes (``ray::<Class>`` titles, descendants of this process:
    never another Ray cluster's on the same machine) on a thread while a solve runs: the peak of their
    summed resident memory, and the CPU seconds each class used meanwhile."""

    interval: float = 0.2
    peak_rss_bytes: int = 0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    _first_cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    _last_cpu: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ProcessWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = {}
        for pid, (kind, first) in self._first_cpu.items():
            used = self._last_cpu.get(pid, first) - first
            self.cpu_seconds[kind] = self.cpu_seconds.get(kind, 0.0) + used

    def _run(self) -> None:
        import psutil

        driver = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in driver.children(recursive=True):
                try:
                    title = (process.cmdline() or [""])[0]
                    if not title.startswith(("ray::ArmActor", "ray::IncumbentStore")):
                        continue
                    with process.oneshot():
                        total += process.memory_info().rss
                        cpu = sum(process.cpu_times()[:2])
                except psutil.Error:
                    continue
                kind = "store" if title.startswith("ray::IncumbentStore") else "arms"
                self._first_cpu.setdefault(process.pid, (kind, cpu))
                self._last_cpu[process.pid] = cpu
            self.peak_rss_bytes = max(self.peak_rss_bytes, total)
            self._stop.wait(self.interval)


@dataclass
class Run:
    set_name: str
    group: str
    instance: str
    contender: str
    seed: int
    gap: float  # % above the best known; nan when infeasible or without a best-known value
    peak_rss_bytes: int


def run_all(
    paths: list[tuple[str, str, Path]], seeds: int, time_limit: float, cpus: int, only: list[str] | None
) -> list[Run]:
    runs = []
    for set_name, group, path in paths:
        if only and path.stem not in only:
            continue
        for seed in range(seeds):
            for name, solver in contenders(group, cpus).items():
                seeded = {**solver, "seed": seed}
                if "arms" in solver:  # explicit arms carry their own seeds
                    seeded["arms"] = [{**arm, "seed": seed} for arm in solver["arms"]]
                with ProcessWatch() as watch:
                    result = solve(path, seeded, time_limit, RUN_DIR)
                feasible = result.feasible and result.gap() is not None
                gap = 100 * result.gap() if feasible else float("nan")
                runs.append(Run(set_name, group, path.stem, name, seed, gap, watch.peak_rss_bytes))
                print(
                    f"{path.stem:12} seed {seed} {name:14} {result.status:12} objective {result.objective} "
                    f"gap {gap:.3f}% peak {watch.peak_rss_bytes / 2**20:.0f} MiB",
                    flush=True,
                )
    return runs


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def instance_rows(runs: list[Run]) -> list[list[Any]]:
    """One row per instance: each contender's mean gap over the seeds, and whether sharing was at or
    below every single solver on every seed."""
    rows = []
    keys = list(dict.fromkeys((r.set_name, r.group, r.instance) for r in runs))
    for set_name, group, instance in keys:
        mine = [r for r in runs if (r.set_name, r.group, r.instance) == (set_name, group, instance)]
        cells = {c: _mean([r.gap for r in mine if r.contender == c]) for c in COLUMNS}
        by_seed: dict[int, dict[str, float]] = {}
        for r in mine:
            by_seed.setdefault(r.seed, {})[r.contender] = r.gap
        at_or_below = all(
            gaps["sharing"] <= min(v for k, v in gaps.items() if k.startswith("single")) + 1e-9
            for gaps in by_seed.values()
        )
        ran = {r.contender for r in mine}
        row = [set_name, instance, *[cells[c] if c in ran else "" for c in COLUMNS]]
        rows.append([*row, "yes" if at_or_below else "no"])
    return rows


def set_rows(runs: list[Run]) -> list[list[Any]]:
    """Per set and single solver: mean gaps, their ratio, the pairs worse by > 0.5 points, peak memory."""
    rows = []
    for set_name in dict.fromkeys(r.set_name for r in runs):
        mine = [r for r in runs if r.set_name == set_name]
        sharing = {(r.instance, r.seed): r.gap for r in mine if r.contender == "sharing"}
        peak = max(r.peak_rss_bytes for r in mine) / 2**20
        for single in [c for c in COLUMNS if c.startswith("single") and any(r.contender == c for r in mine)]:
            theirs = {(r.instance, r.seed): r.gap for r in mine if r.contender == single}
            pairs = sorted(set(sharing) & set(theirs))
            ours_mean = _mean([sharing[p] for p in pairs])
            theirs_mean = _mean([theirs[p] for p in pairs])
            worse = sum(1 for p in pairs if not sharing[p] <= theirs[p] + WORSE_BY_POINTS)  # nan counts
            ratio = ours_mean / theirs_mean if theirs_mean else float("nan")
            share = f"{worse} ({100 * worse / len(pairs):.0f} %)"
            rows.append([set_name, single, len(pairs), ours_mean, theirs_mean, ratio, share, f"{peak:.0f}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.optimize")
    parser.add_argument("--set", nargs="+", default=None, help=f"instance sets: {sorted(instance_sets())}")
    parser.add_argument("--quick", action="store_true", help="the quick set, 5 s each")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per instance and contender")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="search seconds per run (default 30, quick 5)"
    )
    parser.add_argument("--cpus", type=int, default=2, help="CPUs every contender gets")
    parser.add_argument("--only", nargs="*", default=None, help="instance names to keep")
    args = parser.parse_args(argv)
    set_names = args.set or (["quick"] if args.quick else ["default"])
    time_limit = args.time_limit or (5.0 if args.quick else 30.0)
    paths = instance_paths(set_names)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from bench.report import markdown_table, write_result

    # address="local": always a cluster of its own with exactly --cpus CPUs, never one found running.
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    started = time.monotonic()
    runs = run_all(paths, args.seeds, time_limit, args.cpus, args.only)
    ray.shutdown()
    table = markdown_table(
        ["set", "instance", *[f"{c} gap %" for c in COLUMNS], "sharing <= every single"], instance_rows(runs)
    )
    summary = markdown_table(
        ["set", "single solver", "(instance, seed) pairs", "sharing mean gap %", "single mean gap %",
         "ratio", f"sharing worse by > {WORSE_BY_POINTS} points", "peak MiB"],
        set_rows(runs),
    )  # fmt: skip
    notes = (
        f"Sets {', '.join(set_names)}{' (only ' + ' '.join(args.only) + ')' if args.only else ''}; "
        f"seeds 0..{args.seeds - 1}; search time {time_limit:g} s per run after the actors are up; every "
        f"contender gets {args.cpus} CPUs (portfolio: {args.cpus} actors x 1 CPU, which race for the default "
        f"race_fraction of the time, then the leading arm gets the threads it can use, CP-SAT all "
        f"{args.cpus}, PyVRP 1; single solvers: one actor with {args.cpus} CPUs). "
        "Gap = (objective - best known) / best known, the mean over the seeds. Peak MiB: the summed "
        f"resident memory of the arm and store processes, the highest seen in any run of the set. "
        f"Whole bench: {time.monotonic() - started:.0f} s."
    )
    # Only the full default set replaces bench/results/optimize.md (docs/benchmarks.md is built from it).
    official = set_names == ["default"] and not args.only
    text = write_result(
        "optimize",
        f"Optimization portfolio vs single solvers ({time_limit:g} s)",
        f"{table}\n\nPer set:\n\n{summary}",
        notes,
        save=official,
    )
    if not official:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        (RUN_DIR / f"{'-'.join(set_names)}.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
