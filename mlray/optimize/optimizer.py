"""``solve(problem, config)``: a problem of any registered kind in, a checked solution out.

``PortfolioOptimizer`` does the work; ``SchedulingOptimizer`` and ``RoutingOptimizer`` are the same
narrowed to job shop and to routing.

``parallel_solve`` reads the problem (an object or a file path), resumes from a
checkpointed incumbent of the same run name, runs the portfolio on Ray, checks
the answer with the independent checker, draws PNGs and logs to MLflow.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, ClassVar

from mlray.cluster import init_ray
from mlray.config.optimize import ArmSection, OptimizeJobConfig
from mlray.metrics.optimize import OptimizeMetrics
from mlray.metrics.progress import Progress
from mlray.optimize.arms.base import ArmSpec, arm_class_of
from mlray.optimize.incumbent import CheckpointError, CheckpointTarget, Incumbent, load_checkpoint
from mlray.optimize.kinds import jobshop
from mlray.optimize.kinds.base import ProblemKind
from mlray.optimize.outputs import outputs_written
from mlray.optimize.controller import run_portfolio
from mlray.optimize.portfolio import PortfolioSettings
from mlray.optimize.problems import JobShopProblem, Problem, ProblemError, RoutingProblem
from mlray.optimize.registry import check, kind_of, read_problem, solution_from_payload
from mlray.optimize.result import OptimizationResult
from mlray.optimize.stopping import SearchStopping
from mlray.storage import Storage

__all__ = [
    "OptimizationResult",
    "PortfolioOptimizer",
    "RoutingOptimizer",
    "SchedulingOptimizer",
    "optimizer_for",
    "solve",
]

log = logging.getLogger(__name__)


class PortfolioOptimizer:
    """Any registered problem kind; its registry entry gives the default arms, checker and pictures.
    ``problem_types`` / ``solver_type`` narrow a subclass to some kinds."""

    problem_types: ClassVar[tuple[type, ...]] = ()
    solver_type: ClassVar[str] = ""

    def __init__(self, config: OptimizeJobConfig | None = None) -> None:
        self.config = config or OptimizeJobConfig()
        if self.solver_type and self.config.solver.type not in ("auto", self.solver_type):
            raise ValueError(
                f"solver.type: {type(self).__name__} expected 'auto' or {self.solver_type!r}, "
                f"got {self.config.solver.type!r}"
            )

    def kind_for(self, problem: Problem) -> ProblemKind:
        """The registry entry of ``problem``'s kind, checked against this optimizer and ``solver.type``."""
        if self.problem_types and not isinstance(problem, self.problem_types):
            expected = " or ".join(t.__name__ for t in self.problem_types)
            raise ProblemError(f"{type(self).__name__}: expected a {expected}, got {type(problem).__name__}")
        kind = kind_of(problem)
        if self.config.solver.type not in ("auto", kind.solver_type):
            raise ValueError(
                f"solver.type: a {problem.kind} problem expects 'auto' or {kind.solver_type!r}, "
                f"got {self.config.solver.type!r}"
            )
        return kind

    def default_arms(self, problem: Problem, count: int) -> list[ArmSection]:
        solver = self.config.solver.model_copy(update={"num_actors": count})
        return self.kind_for(problem).default_arms(problem, solver)

    def arm_specs(self, problem: Problem) -> list[ArmSpec]:
        solver = self.config.solver
        sections = solver.arms if solver.arms is not None else self.default_arms(problem, solver.num_actors)
        specs = [ArmSpec.from_section(section, i) for i, section in enumerate(sections)]
        for spec in specs:
            if spec.improve_only and not spec.receive:
                raise ValueError(f"solver.arms: arm {spec.name}: improve_only needs receive: true")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"solver.arms: expected unique names, got {names}")
        if not specs:
            raise ValueError("solver.arms: expected at least one arm")
        for spec in specs:
            arm_class = arm_class_of(spec)
            if not arm_class.accepts(problem):
                raise ProblemError(
                    f"solver.arms: arm {spec.name} ({spec.kind}) cannot solve a {problem.kind} problem"
                )
        return specs

    def load_problem(self, data: Problem | str | Path) -> Problem:
        problem: Problem = read_problem(data, self.config.problem.kind) if isinstance(data, (str, Path)) else data
        self.kind_for(problem)
        if self.config.problem.best_known is not None:
            problem = _with_best_known(problem, self.config.problem.best_known)
        return problem

    def parallel_solve(self, data: Problem | str | Path) -> OptimizationResult:
        started = time.monotonic()
        config = self.config
        problem = self.load_problem(data)
        specs = self.arm_specs(problem)
        init_ray(config.ray)
        storage = Storage(config.storage.uri).child(config.run_name, "optimize")
        checkpoint = None
        if config.spot.enabled and config.spot.checkpointing.enabled:
            checkpoint = CheckpointTarget(
                storage,
                problem.fingerprint(),
                config.checkpoint.interval,
                config.checkpoint.write_timeout,
                config.checkpoint.retry_interval,
            )
        resume_incidents: list[dict[str, Any]] = []
        initial = self._resume_point(problem, storage, resume_incidents) if config.checkpoint.resume else None
        settings = PortfolioSettings(SearchStopping.from_config(config, started), config.solver)
        log.info(
            "solving %s (%s) with arms %s for %.1f s",
            problem.name,
            problem.kind,
            [s.name for s in specs],
            settings.stopping.time_limit,
        )
        progress = Progress(f"solve {problem.name}", total=settings.stopping.time_limit, unit="s")
        outcome = run_portfolio(
            problem,
            specs,
            settings,
            checkpoint=checkpoint,
            initial=initial,
            on_progress=lambda report, seconds: _log_progress(problem, report, seconds, progress),
            name_prefix=config.run_name,
            observed=OptimizeMetrics(config.monitoring.enable_metrics, config.run_name, problem.name,
                                     problem.scale, problem.best_known),
        )
        progress.close()
        report = outcome.report
        solution, violations = None, ["no solution found"]
        if report.incumbent is not None:
            solution = solution_from_payload(problem, report.incumbent.payload)
            violations = check(problem, solution, report.incumbent.objective)
        scale = problem.scale
        result = OptimizationResult(
            run_name=config.run_name,
            problem_name=problem.name,
            kind=problem.kind,
            status=outcome.status,
            objective=None if report.objective is None else report.objective / scale,
            best_bound=None if report.bound is None else report.bound / scale,
            best_known=problem.best_known,
            solution=solution,
            feasible=not violations,
            violations=violations,
            arm_stats=outcome.arm_stats,
            history=[{**h, "objective": h["objective"] / scale} for h in report.history],
            bound_history=[{**b, "bound": b["bound"] / scale} for b in report.bound_history],
            solve_seconds=outcome.solve_seconds,
            elapsed_seconds=0.0,
            resumed_from=None if initial is None else initial[0].objective / scale,
            checkpoint_uri=None if checkpoint is None else storage.url("incumbent.json"),
            allocation_history=report.allocation_history,
            incidents=resume_incidents + report.incidents,
            checkpoint_writes=report.checkpoint_writes,
            checkpoint_pending=report.checkpoint_pending,
            store_restarts=outcome.store_restarts,
            states=outcome.states,
        )
        with outputs_written(config, problem, result):  # MLflow logs the plots from local files
            if config.mlflow.enabled:
                from mlray.optimize.tracking import log_result

                result.mlflow_run_id = log_result(config.mlflow, result, self._mlflow_params(problem, specs))
        result.elapsed_seconds = round(time.monotonic() - started, 3)
        return result

    def _resume_point(
        self, problem: Problem, storage: Storage, incidents: list[dict[str, Any]]
    ) -> tuple[Incumbent, int | None] | None:
        """The checkpointed incumbent to start from; an unusable checkpoint is reported and ignored."""
        try:
            found = load_checkpoint(storage, problem.fingerprint())
            if found is None:
                return None
            incumbent, _ = found
            try:
                solution = solution_from_payload(problem, incumbent.payload)
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(
                    f"checkpoint {storage.url('incumbent.json')}: payload: {exc!r:.200}"
                ) from None
            violations = check(problem, solution, incumbent.objective)
            if violations:
                raise CheckpointError(
                    f"checkpoint {storage.url('incumbent.json')}: fails the checker ({violations[0]})"
                )
        except CheckpointError as exc:
            what = f"{exc}; ignored, starting fresh"
            log.warning("%s", what)
            incidents.append({"time": 0.0, "what": what})
            return None
        log.info("resuming from checkpointed incumbent %s", incumbent.objective / problem.scale)
        return found

    def _mlflow_params(self, problem: Problem, specs: list[ArmSpec]) -> dict[str, object]:
        solver = self.config.solver
        return {
            "problem": problem.name,
            "kind": problem.kind,
            "arms": ",".join(s.name for s in specs),
            "time_limit": solver.time_limit,
            "sharing": solver.sharing,
            "cpus_per_actor": solver.cpus_per_actor,
        }


class SchedulingOptimizer(PortfolioOptimizer):
    """Job shop only; its default portfolio is job shop's (``kinds/jobshop.py``: CP-SAT and tabu arms)."""

    problem_types = (JobShopProblem,)
    solver_type = "cp_sat"
    STRATEGIES: ClassVar[list[dict[str, Any]]] = jobshop.STRATEGIES


class RoutingOptimizer(PortfolioOptimizer):
    """CVRP / VRPTW only; its default portfolio is routing's (``kinds/routing.py``: PyVRP, OR-Tools)."""

    problem_types = (RoutingProblem,)
    solver_type = "routing"


def optimizer_for(problem: Problem, config: OptimizeJobConfig) -> PortfolioOptimizer:
    """An optimizer for ``problem``'s kind; ValueError if ``solver.type`` names another kind's."""
    optimizer = PortfolioOptimizer(config)
    optimizer.kind_for(problem)
    return optimizer


def solve(problem: Problem | str | Path, config: OptimizeJobConfig | None = None) -> OptimizationResult:
    """Solve ``problem`` (an object of a registered kind, or a file path) as ``config`` says."""
    return PortfolioOptimizer(config).parallel_solve(problem)


def _with_best_known(problem: Problem, best_known: float) -> Problem:
    import dataclasses

    return dataclasses.replace(problem, best_known=best_known)


def _log_progress(problem: Problem, report: Any, seconds: float, progress: Progress) -> None:
    if report.incumbent is None:
        return
    objective = report.incumbent.objective / problem.scale
    progress.update(round(seconds, 1), f"incumbent {objective:g}")
    bound = None if report.bound is None else report.bound / problem.scale
    gap = (
        ""
        if not problem.best_known
        else f" gap {100 * (objective - problem.best_known) / problem.best_known:.2f}%"
    )
    log.info("t=%.1fs incumbent %g by %s, bound %s%s", seconds, objective, report.incumbent.arm, bound, gap)
