"""OR-Tools routing (CVRP, VRPTW) with a first-solution strategy and a metaheuristic.

Rounds restart from the best incumbent with ``ReadAssignmentFromRoutes`` +
``SolveFromAssignmentWithParameters``; the model is closed with the search
parameters first (``CloseModelWithParameters``), without which a solve from
an assignment ignores them. An at-solution callback publishes improvements;
a custom search limit, polled by the solver, ends a round early.
"""

from __future__ import annotations

import math
from typing import Any

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from mlray.optimize.arms.base import Arm, ArmSpec, RoundResult, StoreLink
from mlray.optimize.incumbent import Incumbent
from mlray.optimize.problems import RoutePlan, RoutingProblem, route_cost

DEFAULT_OPTIONS = {"first_solution": "PATH_CHEAPEST_ARC", "metaheuristic": "GUIDED_LOCAL_SEARCH"}


def fleet_size(problem: RoutingProblem, routes_needed: int = 0) -> int:
    """Vehicles to model: every vehicle costs search effort, so a margin above the bin-packing
    bound rather than one per customer (time windows need the real fleet)."""
    if problem.time_windows is not None:
        wanted = problem.num_vehicles
    else:
        lower = problem.min_vehicles()
        wanted = max(lower + 3, math.ceil(lower * 1.3))
    return min(problem.num_vehicles, max(wanted, routes_needed))


class OrToolsRoutingArm(Arm):
    problem_type = RoutingProblem

    def __init__(self, problem: RoutingProblem, spec: ArmSpec, cpus: int) -> None:  # type: ignore[override]
        super().__init__(problem, spec, cpus)
        options = {**DEFAULT_OPTIONS, **spec.options}
        self.first_solution = getattr(routing_enums_pb2.FirstSolutionStrategy, options["first_solution"])
        self.metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, options["metaheuristic"])
        self.solution_limit = options.get("solution_limit")
        self.link: StoreLink | None = None
        self.interrupted = False
        self.fleet = 0
        self._build(fleet_size(problem))

    def _build(self, fleet: int) -> None:
        problem = self.problem
        assert isinstance(problem, RoutingProblem)
        self.fleet = fleet
        self.manager = pywrapcp.RoutingIndexManager(problem.num_nodes, fleet, 0)
        routing = pywrapcp.RoutingModel(self.manager)
        # Transit matrices and vectors are indexed by node, not by routing index.
        distances = [list(row) for row in problem.distances]
        routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(distances))
        demand = routing.RegisterUnaryTransitVector(list(problem.demands))
        routing.AddDimensionWithVehicleCapacity(demand, 0, [problem.capacity] * fleet, True, "load")
        if problem.time_windows is not None:
            nodes = range(problem.num_nodes)
            times = routing.RegisterTransitMatrix([[problem.travel_time(a, b) for b in nodes] for a in nodes])
            horizon = problem.horizon
            routing.AddDimension(times, horizon, horizon, False, "time")
            time_dimension = routing.GetDimensionOrDie("time")
            for node in range(1, problem.num_nodes):
                time_dimension.CumulVar(self.manager.NodeToIndex(node)).SetRange(*problem.time_windows[node])
            for vehicle in range(fleet):
                time_dimension.CumulVar(routing.Start(vehicle)).SetRange(*problem.time_windows[0])
                time_dimension.CumulVar(routing.End(vehicle)).SetRange(*problem.time_windows[0])
        routing.AddAtSolutionCallback(self._on_solution)
        routing.AddSearchMonitor(routing.solver().CustomLimit(self._should_stop))
        self.routing = routing
        self.parameters = self._search_parameters(1.0)
        routing.CloseModelWithParameters(self.parameters)

    def _search_parameters(self, time_limit: float) -> Any:
        parameters = pywrapcp.DefaultRoutingSearchParameters()
        parameters.first_solution_strategy = self.first_solution
        parameters.local_search_metaheuristic = self.metaheuristic
        parameters.time_limit.FromMilliseconds(max(1, int(time_limit * 1000)))
        if self.solution_limit:
            parameters.solution_limit = int(self.solution_limit)
        return parameters

    def _current_routes(self) -> RoutePlan:
        routes = []
        for vehicle in range(self.fleet):
            index = self.routing.NextVar(self.routing.Start(vehicle)).Value()
            route = []
            while not self.routing.IsEnd(index):
                route.append(self.manager.IndexToNode(index))
                index = self.routing.NextVar(index).Value()
            if route:
                routes.append(tuple(route))
        return RoutePlan(tuple(routes))

    def _on_solution(self) -> None:
        if self.link is None:
            return
        objective = int(self.routing.CostVar().Value())
        if self.link.round_best is not None and objective >= self.link.round_best:
            return
        plan = self._current_routes()
        assert isinstance(self.problem, RoutingProblem)
        self.link.publish(route_cost(self.problem, plan), plan.to_payload())

    def _should_stop(self) -> bool:
        if self.link is not None and self.link.should_stop_round():
            self.interrupted = True
        return self.interrupted

    def solve_round(
        self, start: Incumbent | None, time_limit: float, link: StoreLink, round_index: int
    ) -> RoundResult:
        plan = None if start is None else RoutePlan.from_payload(start.payload)
        if plan is not None and len(plan.routes) > self.fleet:
            self._build(fleet_size(self.problem, len(plan.routes)))  # type: ignore[arg-type]
        self.link = link
        self.interrupted = False
        parameters = self._search_parameters(time_limit)
        try:
            assignment = None
            if plan is not None:
                routes = [[self.manager.NodeToIndex(node) for node in route] for route in plan.routes]
                assignment = self.routing.ReadAssignmentFromRoutes(routes, True)
            if assignment is not None:
                self.routing.SolveFromAssignmentWithParameters(assignment, parameters)
            else:
                self.routing.SolveWithParameters(parameters)
        finally:
            self.link = None
        return RoundResult("interrupted" if self.interrupted else "iteration")
