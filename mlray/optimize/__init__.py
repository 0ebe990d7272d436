"""Optimisation on a Ray-actor portfolio sharing incumbents: routing (CVRP, VRPTW), job shop, and any
problem kind registered with ``register_kind``.

from mlray.optimize import read_problem, solve
result = solve(read_problem("ft06"), config)
"""

from mlray.optimize.checkers import check_solution
from mlray.optimize.kinds.base import ProblemKind
from mlray.optimize.optimizer import (
    PortfolioOptimizer,
    RoutingOptimizer,
    SchedulingOptimizer,
    optimizer_for,
    solve,
)
from mlray.optimize.problems import JobShopProblem, JobShopSchedule, ProblemError, RoutePlan, RoutingProblem
from mlray.optimize.registry import read_problem, register_kind
from mlray.optimize.result import OptimizationResult

__all__ = [
    "JobShopProblem",
    "JobShopSchedule",
    "OptimizationResult",
    "PortfolioOptimizer",
    "ProblemError",
    "ProblemKind",
    "RoutePlan",
    "RoutingOptimizer",
    "RoutingProblem",
    "SchedulingOptimizer",
    "check_solution",
    "optimizer_for",
    "read_problem",
    "register_kind",
    "solve",
]
