"""Optimisation on a Ray-actor portfolio sharing incumbents: routing (CVRP, VRPTW) and job shop.

from mlray.optimize import RoutingOptimizer, SchedulingOptimizer
result = SchedulingOptimizer(config).parallel_solve(read_problem("ft06"))
"""

from mlray.optimize.checkers import check_solution
from mlray.optimize.optimizer import OptimizationResult, RoutingOptimizer, SchedulingOptimizer, optimizer_for
from mlray.optimize.problems import JobShopProblem, JobShopSchedule, ProblemError, RoutePlan, RoutingProblem
from mlray.optimize.readers import read_problem

__all__ = [
    "JobShopProblem",
    "JobShopSchedule",
    "OptimizationResult",
    "ProblemError",
    "RoutePlan",
    "RoutingOptimizer",
    "RoutingProblem",
    "SchedulingOptimizer",
    "check_solution",
    "optimizer_for",
    "read_problem",
]
