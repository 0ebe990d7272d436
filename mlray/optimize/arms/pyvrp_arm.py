"""PyVRP (iterated local search, MIT) as an arm for CVRP and VRPTW.

It starts a round from the best incumbent (``initial_solution``), publishes
every new best through the search's ``on_best`` callback, and its stopping
criterion, called once per iteration, ends the round when the store says so.
Customer ``k`` of the problem is PyVRP client ``k - 1`` (the depot is not a client).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyvrp
from pyvrp.IteratedLocalSearch import IteratedLocalSearchCallbacks, IteratedLocalSearchParams

from mlray.optimize.arms.base import Arm, ArmSpec, RoundResult, StoreLink
from mlray.optimize.incumbent import Incumbent
from mlray.optimize.problems import RoutePlan, RoutingProblem


def problem_data(problem: RoutingProblem) -> pyvrp.ProblemData:
    model = pyvrp.Model()
    locations = [model.add_location(x=x, y=y) for x, y in problem.coordinates]
    windows = problem.time_windows or [(0, 2**62)] * problem.num_nodes
    services = problem.service_times or [0] * problem.num_nodes
    model.add_depot(locations[0], tw_early=windows[0][0], tw_late=windows[0][1])
    for node in range(1, problem.num_nodes):
        model.add_client(
            locations[node],
            delivery=[problem.demands[node]],
            service_duration=services[node],
            tw_early=windows[node][0],
            tw_late=windows[node][1],
        )
    model.add_vehicle_type(num_available=problem.num_vehicles, capacity=[problem.capacity])
    # The matrix goes in whole: one Model.add_edge per arc took 4-5 s at 1,000 customers.
    matrix = np.asarray(problem.distances, dtype=np.int64)
    return model.data().replace(distance_matrices=[matrix], duration_matrices=[matrix])


def plan_of(solution: pyvrp.Solution) -> RoutePlan:
    routes = [tuple(a.idx + 1 for a in route if a.is_client()) for route in solution.routes()]
    return RoutePlan(tuple(r for r in routes if r))


class _Publisher(IteratedLocalSearchCallbacks):
    def __init__(self, link: StoreLink) -> None:
        self.link = link

    def on_best(self, best: pyvrp.Solution) -> None:
        if best.is_feasible():
            self.link.publish(int(best.distance()), plan_of(best).to_payload())


class _RoundStop:
    """PyVRP's stopping criterion: round time up, or the store wants this round over."""

    def __init__(self, link: StoreLink, time_limit: float) -> None:
        self.link = link
        self.stop = pyvrp.stop.MaxRuntime(time_limit)
        self.interrupted = False

    def __call__(self, best_cost: float) -> bool:
        if self.link.should_stop_round():
            self.interrupted = True
        return self.interrupted or self.stop(best_cost)


class PyVrpArm(Arm):
    problem_type = RoutingProblem

    def __init__(self, problem: RoutingProblem, spec: ArmSpec, cpus: int) -> None:  # type: ignore[override]
        super().__init__(problem, spec, cpus)
        self.data = problem_data(problem)
        self.ils_options: dict[str, Any] = dict(spec.options)

    def solve_round(
        self, start: Incumbent | None, time_limit: float, link: StoreLink, round_index: int
    ) -> RoundResult:
        initial = None
        if start is not None:
            plan = RoutePlan.from_payload(start.payload)
            initial = pyvrp.Solution(self.data, [[node - 1 for node in route] for route in plan.routes])
        stop = _RoundStop(link, time_limit)
        params = pyvrp.SolveParams(
            ils=IteratedLocalSearchParams(callbacks=_Publisher(link), **self.ils_options)
        )
        result = pyvrp.solve(
            self.data,
            stop,
            seed=self.spec.seed + 1000 * round_index,
            collect_stats=False,
            params=params,
            initial_solution=initial,
        )
        if result.best.is_feasible():
            link.publish(int(result.best.distance()), plan_of(result.best).to_payload())
        return RoundResult("interrupted" if stop.interrupted else "iteration")
