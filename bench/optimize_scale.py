"""1,000 customers: what the portfolio's plumbing costs, and the portfolio against PyVRP alone.

``python -m bench.optimize_scale [--time-limit S] [--cpus N] [--only NAME ...] [--quick]``

For X-n1001-k43 (CVRP) and the Gehring-Homberger VRPTW C1_10_2 and R1_10_2 (DIMACS tenths):

- model build, in this process: reading the file, the problem's fingerprint (checkpoint key),
  the bytes of the problem put once into Ray's object store for all arms, PyVRP's and OR-Tools'
  model build;
- a portfolio solve through the public API (default routing arms, ``--cpus`` actors x 1 CPU,
  checkpointing on) and a single PyVRP arm given the same CPUs and search time (the baseline);
- per solve: objective and gap, whether the checker passed, the incumbent store's CPU seconds,
  the summed peak resident memory of the arm and store processes, the incumbent payload's bytes
  (what one offer or one snapshot carrying the incumbent moves), the number of such exchanges
  (offers by the arms + snapshots that carried a new incumbent to another arm, counted from the
  arms' stats: an upper bound) and the checkpoint file's size and write count.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path
from typing import Any

from bench.optimize import RUN_DIR, SCALE, ProcessWatch, solve
from mlray.optimize import instances, read_problem
from mlray.optimize.arms.base import ArmSpec
from mlray.optimize.incumbent import Incumbent

CHECKPOINTED = {
    "spot": {"enabled": True, "checkpointing": {"enabled": True}},
    "checkpoint": {"resume": False},
}


def build_costs(path: Path) -> dict[str, Any]:
    """Seconds to read, fingerprint and build each arm's model; bytes of the shipped problem."""
    from mlray.optimize.arms.ortools_routing import OrToolsRoutingArm
    from mlray.optimize.arms.pyvrp_arm import PyVrpArm

    timings: dict[str, Any] = {}
    started = time.perf_counter()
    problem = read_problem(path)
    timings["read s"] = time.perf_counter() - started
    started = time.perf_counter()
    problem.fingerprint()
    timings["fingerprint s"] = time.perf_counter() - started
    timings["problem MB (put once)"] = len(pickle.dumps(problem)) / 1e6
    for label, arm_class, kind in (("PyVRP", PyVrpArm, "pyvrp"), ("OR-Tools", OrToolsRoutingArm, "routing")):
        started = time.perf_counter()
        arm_class(problem, ArmSpec(label, kind), 1)
        timings[f"{label} build s"] = time.perf_counter() - started
    return timings


def checkpoint_bytes(run_dir: Path) -> int:
    found = list((run_dir / "storage").rglob("incumbent.json"))
    return max((f.stat().st_size for f in found), default=0)


def measured_solve(path: Path, solver: dict[str, Any], time_limit: float) -> dict[str, Any]:
    run_dir = RUN_DIR / "scale" / f"{path.stem}-{len(solver.get('arms') or [])}"
    for old in (run_dir / "storage").rglob("incumbent.json"):
        old.unlink()
    with ProcessWatch() as watch:
        result = solve(path, solver, time_limit, run_dir, **CHECKPOINTED)
    payload_bytes = 0
    if result.solution is not None:
        incumbent = Incumbent(0, result.solution.to_payload(), "arm")
        payload_bytes = len(pickle.dumps(incumbent))
    offers = sum(s.improvements for s in result.arm_stats)
    receivers = sum(1 for s in result.arm_stats if s.rounds) - 1
    exchanges = offers + len(result.history) * max(receivers, 0)
    gap = result.gap()
    return {
        "objective": result.objective,
        "gap %": float("nan") if gap is None else 100 * gap,
        "checker": "pass" if result.feasible else f"FAIL: {result.violations[:1]}",
        "store CPU s": watch.cpu_seconds.get("store", 0.0),
        "arms CPU s": watch.cpu_seconds.get("arms", 0.0),
        "peak MiB": watch.peak_rss_bytes / 2**20,
        "bytes per exchange": payload_bytes,
        "exchanges (<=)": exchanges,
        "MB moved (<=)": exchanges * payload_bytes / 1e6,
        "checkpoint KB": checkpoint_bytes(run_dir) / 1e3,
        "checkpoint writes": result.checkpoint_writes,
        "improvements": len(result.history),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.optimize_scale")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="search seconds (default 120, quick 10)"
    )
    parser.add_argument("--cpus", type=int, default=2, help="CPUs the portfolio and PyVRP alone each get")
    parser.add_argument("--only", nargs="*", default=None, help="instance names to keep")
    parser.add_argument("--quick", action="store_true", help="X-n1001-k43 only, 10 s")
    args = parser.parse_args(argv)
    time_limit = args.time_limit or (10.0 if args.quick else 120.0)
    names = [n for group in SCALE.values() for n in group]
    names = [n for n in names if (not args.only or n in args.only) and (not args.quick or n == "X-n1001-k43")]
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from bench.report import markdown_table, write_result

    builds, solves = [], []
    for name in names:
        builds.append([name, *build_costs(instances.path(name)).values()])
    build_columns = ["read s", "fingerprint s", "problem MB (put once)", "PyVRP build s", "OR-Tools build s"]
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    contenders = {
        "portfolio": {"num_actors": args.cpus, "cpus_per_actor": 1, "sharing": True},
        "PyVRP alone": {"arms": [{"kind": "pyvrp"}], "cpus_per_actor": args.cpus},
    }
    solve_columns: list[str] = []
    for name in names:
        for label, solver in contenders.items():
            measured = measured_solve(instances.path(name), solver, time_limit)
            solve_columns = list(measured)
            solves.append([name, label, *measured.values()])
            print(name, label, measured, flush=True)
    ray.shutdown()
    table = (
        markdown_table(["instance", *build_columns], builds)
        + "\n\n"
        + markdown_table(["instance", "contender", *solve_columns], solves)
    )
    notes = (
        f"Search time {time_limit:g} s after the actors are up, {args.cpus} CPUs per contender (portfolio: "
        f"{args.cpus} default routing arms x 1 CPU sharing incumbents; PyVRP alone: one PyVRP arm, "
        "same CPUs), "
        "checkpointing on. VRPTW in DIMACS tenths (PyVRP's convention for these instances). Exchanges: "
        "offers by the arms plus, per new incumbent, one snapshot to each other arm (an upper bound)."
    )
    # Not into bench/results/ (docs/benchmarks.md is generated from it): the recorded run and how it was
    # made are in docs/benchmarks-optimization.md.
    text = write_result("optimize_scale", f"1,000 customers ({time_limit:g} s)", table, notes, save=False)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "scale.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
