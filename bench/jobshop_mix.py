"""Which job-shop portfolio at equal CPUs: ``python -m bench.jobshop_mix [--time-limit S] [--seeds N]``.

Each contender gets the same search time and ``--cpus`` CPUs (default 2):

- ``single CP-SAT``: one CP-SAT with ``num_workers = cpus`` (the baseline);
- ``2 CP-SAT arms``: the job-shop default before the tabu arm (an anchor CP-SAT and a core-based one,
  one thread each, race then focus);
- ``CP-SAT + tabu, fixed``: CP-SAT with ``cpus - 1`` workers and the tabu arm with 1 walker, exchanging
  incumbents both ways for the whole run (neither can take the other's CPUs);
- ``CP-SAT + tabu, race (default)``: both uncapped, one thread each during the race, then the leader
  takes all (the default job-shop portfolio at 2 CPUs);
- ``tabu alone``: the tabu arm with ``cpus`` walkers.

Instances (``INSTANCES``): none was used to tune the tabu arm's parameters (ta11, ta21, ta25 and la29
were) nor is in bench/optimize.py's default set. Per contender: mean gap to the best known value (%),
its ratio to single CP-SAT's, and the wins/losses by more than 0.5 points against it; per mixed
contender, what each arm contributed: its share of the store's improvements, how often it held the
final incumbent, and the rounds started from the other arm's incumbent (taken), summed over runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from typing import Any

from bench.optimize import RUN_DIR, solve
from mlray.optimize import instances

INSTANCES = ["la24", "la27", "la38", "ta04", "ta15", "ta27"]
BASELINE = "single CP-SAT"
WORSE_BY_POINTS = 0.5


def contenders(cpus: int) -> dict[str, dict[str, Any]]:
    """Contender name -> solver section."""
    one_each = {"cpus_per_actor": cpus // 2}  # two arms, half the CPUs each during the race
    return {
        BASELINE: {"arms": [{"kind": "cp_sat", "options": {"num_workers": cpus}}], "cpus_per_actor": cpus},
        "2 CP-SAT arms": {
            **one_each,
            "arms": [
                {"kind": "cp_sat", "receive": False},
                {"kind": "cp_sat", "options": {"optimize_with_core": True}},
            ],
        },
        "CP-SAT + tabu, fixed": {
            **one_each,
            "arms": [
                {"kind": "cp_sat", "options": {"num_workers": cpus - 1}},
                {"kind": "jobshop_tabu", "options": {"threads": 1}},
            ],
        },
        "CP-SAT + tabu, race (default)": {**one_each, "arms": [{"kind": "cp_sat"}, {"kind": "jobshop_tabu"}]},
        "tabu alone": {"arms": [{"kind": "jobshop_tabu"}], "cpus_per_actor": cpus},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobshop_mix")
    parser.add_argument("--time-limit", type=float, default=15.0, help="search seconds per run")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs every contender gets (>= 2)")
    parser.add_argument("--only", nargs="*", default=None, help="instance names to keep")
    parser.add_argument("--quick", action="store_true", help="2 instances, 5 s")
    args = parser.parse_args(argv)
    if args.cpus < 2 or args.cpus % 2:
        raise SystemExit(f"--cpus: expected an even number >= 2 (two arms, half each), got {args.cpus}")
    names = args.only or (INSTANCES[:2] if args.quick else INSTANCES)
    time_limit = 5.0 if args.quick else args.time_limit
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from bench.report import markdown_table, write_result

    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    started = time.monotonic()
    gaps: dict[str, dict[tuple[str, int], float]] = {}
    contribution: dict[str, dict[str, Counter[str]]] = {}
    for name in names:
        for seed in range(args.seeds):
            for contender, solver in contenders(args.cpus).items():
                arms = [{**arm, "seed": seed} for arm in solver["arms"]]
                result = solve(instances.path(name), {**solver, "arms": arms}, time_limit, RUN_DIR)
                gap = 100 * result.gap() if result.feasible and result.gap() is not None else float("nan")
                gaps.setdefault(contender, {})[(name, seed)] = gap
                kinds = {s.name: s.kind for s in result.arm_stats}
                counts = contribution.setdefault(contender, {})
                for entry in result.history:
                    counts.setdefault("improvements", Counter())[kinds.get(entry["arm"], entry["arm"])] += 1
                if result.history:
                    counts.setdefault("final", Counter())[kinds.get(result.history[-1]["arm"], "?")] += 1
                for stats in result.arm_stats:
                    counts.setdefault("taken", Counter())[stats.kind] += stats.handovers
                    counts.setdefault("improvements", Counter())[stats.kind] += 0  # listed even if none
                print(
                    f"{name:6} seed {seed} {contender:22} {result.status:10} objective {result.objective} "
                    f"gap {gap:.2f}% arms "
                    + "; ".join(f"{s.kind} impr {s.improvements} taken {s.handovers} given {s.given} "
                                f"threads {s.threads}" for s in result.arm_stats),
                    flush=True,
                )
    ray.shutdown()
    pairs = sorted(gaps[BASELINE])
    baseline_mean = statistics.fmean(gaps[BASELINE][p] for p in pairs)
    per_instance = [
        [name, *[statistics.fmean(gaps[c][(name, s)] for s in range(args.seeds)) for c in gaps]]
        for name in names
    ]
    rows = []
    for contender, mine in gaps.items():
        mean = statistics.fmean(mine[p] for p in pairs)
        worse = sum(1 for p in pairs if not mine[p] <= gaps[BASELINE][p] + WORSE_BY_POINTS)
        better = sum(1 for p in pairs if mine[p] < gaps[BASELINE][p] - WORSE_BY_POINTS)
        shares = contribution.get(contender, {})
        arms = ", ".join(
            f"{kind}: {shares['improvements'][kind]} impr, final {shares.get('final', Counter())[kind]}, "
            f"taken {shares.get('taken', Counter())[kind]}"
            for kind in sorted(shares.get("improvements", {}))
        ) if contender != BASELINE else ""
        ratio = mean / baseline_mean if baseline_mean else float("nan")
        rows.append([contender, mean, ratio, better, worse, arms])
    table = markdown_table(["instance", *[f"{c} gap %" for c in gaps]], per_instance)
    summary = markdown_table(
        ["contender", "mean gap %", f"ratio to {BASELINE}", f"better by > {WORSE_BY_POINTS}",
         f"worse by > {WORSE_BY_POINTS}", "what each arm contributed (summed over runs)"],
        rows,
    )  # fmt: skip
    notes = (
        f"Instances {' '.join(names)}, seeds 0..{args.seeds - 1}, {time_limit:g} s of search per run, "
        f"{args.cpus} CPUs per contender, {len(pairs)} (instance, seed) pairs. "
        "Gap = (objective - best known) / best known. impr: improvements of the shared incumbent by that "
        "arm; final: runs in which it held the final incumbent; taken: its rounds started from the other "
        "arm's incumbent (a CP-SAT round hinted "
        f"by tabu, or a tabu restart from CP-SAT's). Whole bench: {time.monotonic() - started:.0f} s."
    )
    write_result(
        "jobshop_mix", f"Job-shop portfolio mixes vs single CP-SAT ({time_limit:g} s, {args.cpus} CPUs)",
        f"{table}\n\n{summary}", notes, save=not args.quick and not args.only,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
