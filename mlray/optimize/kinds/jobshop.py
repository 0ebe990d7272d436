"""Job shop: JSPLIB / Taillard files, the schedule checker, a Gantt chart, CP-SAT arms plus the tabu arm.

The default portfolio: with two or more arms the last one is the tabu arm (``jobshop_tabu``). All race
on equal threads, exchanging incumbents both ways (tabu restarts from CP-SAT's, CP-SAT takes tabu's as
hints); then the leader takes every thread (the tabu arm runs one walker per thread). Chosen by
measurement (bench/jobshop_mix.py, 2 CPUs): this beat holding the tabu arm to one thread beside CP-SAT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlray.config.optimize import ArmSection, SolverSection
from mlray.optimize.checkers import check_schedule
from mlray.optimize.kinds.base import ProblemKind, picture
from mlray.optimize.problems import JobShopProblem, JobShopSchedule
from mlray.optimize.readers import holds_jobshop, read_jobshop

# CP-SAT search strategies, one per CP-SAT arm in turn.
STRATEGIES: list[dict[str, Any]] = [
    {},
    {"optimize_with_core": True},
    {"search_branching": "FIXED_SEARCH"},
    {"optimize_with_lb_tree_search": True},
    {"search_branching": "PORTFOLIO_WITH_QUICK_RESTART_SEARCH"},
]


def default_arms(problem: JobShopProblem, solver: SolverSection) -> list[ArmSection]:
    count = solver.num_actors
    cp_sat = [
        ArmSection(
            kind="cp_sat",
            seed=solver.seed + i,
            # With a tabu arm, the first CP-SAT arm takes its schedules as hints (no anchor).
            receive=i > 0 or count > 1,
            options=STRATEGIES[i % len(STRATEGIES)],
        )
        for i in range(max(1, count - 1))
    ]
    if count < 2:
        return cp_sat
    return [*cp_sat, ArmSection(kind="jobshop_tabu", seed=solver.seed + count - 1)]


def read(path: Path, kind: str) -> JobShopProblem:
    return read_jobshop(path)


JOBSHOP = ProblemKind(
    "jobshop", JobShopProblem, JobShopSchedule, read=read, detect=holds_jobshop, check=check_schedule,
    default_arms=default_arms, plot=picture("gantt", "draw_gantt"), solver_type="cp_sat",
)
