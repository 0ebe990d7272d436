"""CVRP and VRPTW: VRPLIB and Solomon files, the route checker, a route map, PyVRP and OR-Tools arms."""

from __future__ import annotations

from mlray.config.optimize import ArmSection, SolverSection
from mlray.optimize.checkers import check_routes
from mlray.optimize.kinds.base import ProblemKind, picture
from mlray.optimize.problems import RoutePlan, RoutingProblem
from mlray.optimize.readers import holds_routing, read_routing


def default_arms(problem: RoutingProblem, solver: SolverSection) -> list[ArmSection]:
    first = "PARALLEL_CHEAPEST_INSERTION" if problem.time_windows is not None else "PATH_CHEAPEST_ARC"
    # PyVRP first: measured here it beats OR-Tools GLS by a wide margin on CVRP and VRPTW
    # (bench/optimize.py), so two PyVRP seeds sharing incumbents make the best 2-CPU portfolio.
    cycle = [
        ("pyvrp", {}),
        ("pyvrp", {}),
        ("routing", {"first_solution": first, "metaheuristic": "GUIDED_LOCAL_SEARCH"}),
        ("routing", {"first_solution": "SAVINGS", "metaheuristic": "TABU_SEARCH"}),
        ("routing", {"first_solution": first, "metaheuristic": "SIMULATED_ANNEALING"}),
    ]
    return [
        ArmSection(
            kind=cycle[i % len(cycle)][0],
            seed=solver.seed + i,
            receive=i > 0,  # the anchor: never worse than its own run
            options=cycle[i % len(cycle)][1],
        )
        for i in range(solver.num_actors)
    ]


ROUTING = ProblemKind(
    "routing", RoutingProblem, RoutePlan, read=read_routing, detect=holds_routing, check=check_routes,
    default_arms=default_arms, plot=picture("routes", "draw_routes"), names=("cvrp", "vrptw"),
    solver_type="routing",
)
