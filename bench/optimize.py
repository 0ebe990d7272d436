"""Portfolio vs single solvers, same wall time and CPUs: ``python -m bench.optimize [--quick] [--time-limit S]``.

Contenders per instance, each given the same search time and ``--cpus`` CPUs:
the portfolio with sharing, the same arms without sharing, and the single
solvers (CP-SAT with ``num_workers = cpus`` for job shop; one OR-Tools GLS run
and one PyVRP run for routing). Cells are the gap to the best-known value in %.
The portfolios run with the default ``solver.race_fraction``: ``cpus`` arms race on
one thread each, then the leader gets the threads it can use; the threads in use
never exceed ``cpus``.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Any

from mlray.optimize import instances

PROJECT_ROOT = Path(__file__).resolve().parents[1]
JOB_SHOP = ["ft10", "ft20", "la16", "la17", "la18", "la19", "la20", "ta01"]
CVRP = ["X-n101-k25", "X-n106-k14", "X-n110-k13", "X-n120-k6", "X-n157-k13"]
VRPTW = ["C101", "R101", "RC101"]
QUICK = {"jsp": ["ft10", "la16"], "cvrp": ["X-n101-k25"], "vrptw": ["C101"]}


def instance_paths(quick: bool) -> list[tuple[str, Path]]:
    groups = QUICK if quick else {"jsp": JOB_SHOP, "cvrp": CVRP, "vrptw": VRPTW}
    return [(group, instances.path(name)) for group, names in groups.items() for name in names]


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


def solve(path: Path, solver: dict[str, Any], time_limit: float, run_dir: Path) -> Any:
    from mlray.config.or_tools import OrToolsJobConfig
    from mlray.optimize import optimizer_for, read_problem

    config = OrToolsJobConfig.model_validate(
        {
            "run_name": "bench",
            "solver": {"time_limit": time_limit, **solver},
            "timeouts": {"total_runtime": None, "iteration": None},
            "spot": {"enabled": False},
            "checkpoint": {"resume": False},
            "mlflow": {"enabled": False},
            "output": {"plots": False, "dir": str(run_dir)},
            "storage": {"uri": str(run_dir / "storage")},
        }
    )
    problem = read_problem(path)
    return optimizer_for(problem, config).parallel_solve(problem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.optimize")
    parser.add_argument("--quick", action="store_true", help="4 instances, 5 s each")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="search seconds per run (default 30, quick 5)"
    )
    parser.add_argument("--cpus", type=int, default=2, help="CPUs every contender gets")
    parser.add_argument("--only", nargs="*", default=None, help="instance names to keep")
    args = parser.parse_args(argv)
    time_limit = args.time_limit or (5.0 if args.quick else 30.0)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from bench.report import markdown_table, write_result

    # address="local": always a cluster of its own with exactly --cpus CPUs, never one found running.
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    run_dir = PROJECT_ROOT / "runs" / "bench-optimize"
    rows, gaps_by_group = [], {}
    columns = ["sharing", "no sharing", "single CP-SAT", "single GLS", "single PyVRP"]
    for group, path in instance_paths(args.quick):
        if args.only and path.stem not in args.only:
            continue
        cells: dict[str, float] = {}
        for name, solver in contenders(group, args.cpus).items():
            result = solve(path, solver, time_limit, run_dir)
            if not result.feasible or result.gap() is None:
                cells[name] = float("nan")
            else:
                cells[name] = 100 * result.gap()
            print(
                f"{path.stem:12} {name:14} {result.status:12} objective {result.objective} gap {cells[name]:.3f}%",
                flush=True,
            )
        singles = [v for k, v in cells.items() if k.startswith("single")]
        verdict = "yes" if cells["sharing"] <= min(singles) + 1e-9 else "no"
        rows.append([group, path.stem, *[cells.get(c, "") for c in columns], verdict])
        gaps_by_group.setdefault(group, []).append(cells)
    for group, cell_list in gaps_by_group.items():
        means = {c: statistics.fmean(cells[c] for cells in cell_list) for c in columns if c in cell_list[0]}
        rows.append([group, "**mean**", *[means.get(c, "") for c in columns], ""])
    table = markdown_table(
        ["set", "instance", *[f"{c} gap %" for c in columns], "sharing <= every single"], rows
    )
    notes = (
        f"Search time {time_limit:g} s per run after the actors are up; every contender gets {args.cpus} CPUs "
        f"(portfolio: {args.cpus} actors x 1 CPU, which race for the default race_fraction of the time, "
        f"then the leading arm gets the threads it can use, CP-SAT all {args.cpus}, PyVRP 1; "
        f"single solvers: one actor with {args.cpus} CPUs). "
        "Gap = (objective - best known) / best known."
    )
    write_result("optimize", f"Optimization portfolio vs single solvers ({time_limit:g} s)", table, notes)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
