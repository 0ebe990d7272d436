"""``RoutingOptimizer`` and ``SchedulingOptimizer``: a problem in, a checked solution out.

``parallel_solve`` reads the problem (an object or a file path), resumes from a
checkpointed incumbent of the same run name, runs the portfolio on Ray, checks
the answer with the independent checker, draws PNGs and logs to MLflow.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mlray.cluster import init_ray
from mlray.config.optimize import ArmSection, OptimizeJobConfig
from mlray.metrics.optimize import OptimizeMetrics
from mlray.metrics.progress import Progress
from mlray.optimize.arms.base import ArmSpec, ArmStats, arm_class_of
from mlray.optimize.checkers import check_solution
from mlray.optimize.incumbent import CheckpointError, CheckpointTarget, Incumbent, load_checkpoint
from mlray.optimize.portfolio import PortfolioSettings, run_portfolio
from mlray.optimize.problems import (
    JobShopProblem,
    JobShopSchedule,
    Problem,
    ProblemError,
    RoutingProblem,
    Solution,
    solution_from_payload,
)
from mlray.optimize.readers import read_problem
from mlray.optimize.stopping import SearchStopping
from mlray.storage import Storage

log = logging.getLogger(__name__)


@dataclass
class OptimizationResult:
    """Objectives in the problem's own units (routing: distance, job shop: makespan)."""

    run_name: str
    problem_name: str
    kind: str
    status: str
    objective: float | None
    best_bound: float | None
    best_known: float | None
    solution: Solution | None
    feasible: bool
    violations: list[str]
    arm_stats: list[ArmStats]
    history: list[dict[str, Any]]
    bound_history: list[dict[str, Any]]
    solve_seconds: float
    elapsed_seconds: float
    resumed_from: float | None = None
    checkpoint_uri: str | None = None
    plots: dict[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    allocation_history: list[dict[str, Any]] = field(default_factory=list)  # {"time", "threads"}
    # Faults met and survived: checkpoint writes that failed or hung, an unusable checkpoint, store restarts.
    incidents: list[dict[str, Any]] = field(default_factory=list)  # {"time", "what"}
    checkpoint_writes: int = 0
    checkpoint_pending: bool = False  # the final incumbent could not be written (storage still failing)
    store_restarts: int = 0

    def gap(self, best_known: float | None = None) -> float | None:
        """Relative distance of the objective above ``best_known`` (default: the problem's)."""
        reference = self.best_known if best_known is None else best_known
        if self.objective is None or not reference:
            return None
        return (self.objective - reference) / reference

    @property
    def optimality_gap(self) -> float | None:
        if self.objective is None or self.best_bound is None or not self.objective:
            return None
        return (self.objective - self.best_bound) / self.objective

    def incumbent_arms(self) -> list[str]:
        return [h["arm"] for h in self.history]

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "problem": self.problem_name,
            "kind": self.kind,
            "objective": self.objective,
            "best_bound": self.best_bound,
            "best_known": self.best_known,
            "gap_to_best_known": None if self.gap() is None else round(self.gap(), 6),
            "optimality_gap": None if self.optimality_gap is None else round(self.optimality_gap, 6),
            "feasible": self.feasible,
            "violations": self.violations[:5],
            "improvements": len(self.history),
            "found_by": self.history[-1]["arm"] if self.history else None,
            "arms": {
                s.name: {
                    "rounds": s.rounds,
                    "improvements": s.improvements,
                    "ended_by": s.ended_by,
                    "handovers": s.handovers,
                    "taken_from": s.taken_from,
                    "given": s.given,
                    "restarted": s.restarted,
                    "threads": s.threads,
                    "error": s.error,
                }
                for s in self.arm_stats
            },
            "resumed_from": self.resumed_from,
            "incidents": [i["what"] for i in self.incidents],
            "checkpoint_writes": self.checkpoint_writes,
            "checkpoint_pending": self.checkpoint_pending,
            "store_restarts": self.store_restarts,
            "solve_s": self.solve_seconds,
            "plots": self.plots,
            "mlflow_run_id": self.mlflow_run_id,
        }


class PortfolioOptimizer:
    """Shared by both optimizers; subclasses say which problems and which default arms."""

    problem_types: ClassVar[tuple[type, ...]] = ()
    solver_type: ClassVar[str] = ""

    def __init__(self, config: OptimizeJobConfig | None = None) -> None:
        self.config = config or OptimizeJobConfig()
        if self.config.solver.type not in ("auto", self.solver_type):
            raise ValueError(
                f"solver.type: {type(self).__name__} expected 'auto' or {self.solver_type!r}, "
                f"got {self.config.solver.type!r}"
            )

    def default_arms(self, problem: Problem, count: int) -> list[ArmSection]:
        raise NotImplementedError

    def arm_specs(self, problem: Problem) -> list[ArmSpec]:
        solver = self.config.solver
        sections = solver.arms if solver.arms is not None else self.default_arms(problem, solver.num_actors)
        specs = [
            ArmSpec(s.name or f"{s.kind}-{i}", s.kind, s.seed, dict(s.options), s.improve_only, s.receive)
            for i, s in enumerate(sections)
        ]
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
        if isinstance(data, (str, Path)):
            data = read_problem(data, self.config.problem.kind)
        if not isinstance(data, self.problem_types):
            expected = " or ".join(t.__name__ for t in self.problem_types)
            raise ProblemError(f"{type(self).__name__}: expected a {expected}, got {type(data).__name__}")
        if self.config.problem.best_known is not None:
            data = _with_best_known(data, self.config.problem.best_known)
        return data

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
        settings = self._settings(started)
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
            violations = check_solution(problem, solution, report.incumbent.objective)
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
        )
        with self._outputs_written(problem, result):  # MLflow logs the plots from local files
            if config.mlflow.enabled:
                from mlray.optimize.tracking import log_result

                result.mlflow_run_id = log_result(config.mlflow, result, self._mlflow_params(problem, specs))
        result.elapsed_seconds = round(time.monotonic() - started, 3)
        return result

    def _settings(self, started: float) -> PortfolioSettings:
        config = self.config
        return PortfolioSettings(
            stopping=SearchStopping.from_config(config, started),
            sharing=config.solver.sharing,
            cpus_per_actor=config.solver.cpus_per_actor,
            workers_per_arm=config.solver.workers_per_arm or math.ceil(config.solver.cpus_per_actor),
            max_restarts=config.solver.max_restarts,
            poll_interval=config.solver.poll_interval,
            handover_interval=config.solver.handover_interval,
            stop_grace=config.solver.stop_grace,
            race_fraction=config.solver.race_fraction,
            store_max_restarts=config.solver.store_max_restarts,
            lost_after=config.solver.lost_after,
        )

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
            violations = check_solution(problem, solution, incumbent.objective)
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

    @contextmanager
    def _outputs_written(self, problem: Problem, result: OptimizationResult) -> Iterator[None]:
        """Solution JSON and plots into ``<output.dir>/<run_name>`` (output.dir under storage.uri when
        relative). Remote ones are drawn into a local folder kept for the block, then uploaded; after it,
        ``result.plots`` names the uploaded files."""
        target = Storage(self.config.storage.location(self.config.output.dir)).child(self.config.run_name)
        if not target.is_remote:
            self._render_outputs(problem, result, Path(target.root))
            yield
            return
        with tempfile.TemporaryDirectory(prefix="mlray-optimize-") as folder:
            self._render_outputs(problem, result, Path(folder))
            for file in sorted(Path(folder).iterdir()):
                target.upload_file(str(file), file.name)
            yield
        result.plots = {name: target.url(Path(local).name) for name, local in result.plots.items()}

    def _render_outputs(self, problem: Problem, result: OptimizationResult, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if result.solution is not None:
            (folder / "solution.json").write_text(
                json.dumps({**result.summary(), "solution": result.solution.to_payload()}, default=str)
            )
        if not self.config.output.plots:
            return
        from mlray.optimize import plots

        if result.solution is not None:
            if isinstance(problem, JobShopProblem):
                assert isinstance(result.solution, JobShopSchedule)
                result.plots["gantt"] = str(plots.draw_gantt(problem, result.solution, folder / "gantt.png"))
            else:
                result.plots["routes"] = str(
                    plots.draw_routes(problem, result.solution, folder / "routes.png")
                )  # type: ignore[arg-type]
        result.plots["history"] = str(
            plots.draw_history(
                result.history, result.bound_history, folder / "history.png", result.best_known
            )
        )

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
    """Job shop on CP-SAT arms that differ in seed and search strategy, plus the tabu arm.

    With two or more arms the last one is the tabu arm (``jobshop_tabu``). All race on equal threads,
    exchanging incumbents both ways (tabu restarts from CP-SAT's, CP-SAT takes tabu's as hints); then
    the leader takes every thread (the tabu arm runs one walker per thread). Chosen by measurement
    (bench/jobshop_mix.py, 2 CPUs): this beat holding the tabu arm to one thread beside CP-SAT.
    """

    problem_types = (JobShopProblem,)
    solver_type = "cp_sat"
    STRATEGIES: ClassVar[list[dict[str, Any]]] = [
        {},
        {"optimize_with_core": True},
        {"search_branching": "FIXED_SEARCH"},
        {"optimize_with_lb_tree_search": True},
        {"search_branching": "PORTFOLIO_WITH_QUICK_RESTART_SEARCH"},
    ]

    def default_arms(self, problem: Problem, count: int) -> list[ArmSection]:
        solver = self.config.solver
        cp_sat = [
            ArmSection(
                kind="cp_sat",
                seed=solver.seed + i,
                # With a tabu arm, the first CP-SAT arm takes its schedules as hints (no anchor).
                receive=i > 0 or count > 1,
                options=self.STRATEGIES[i % len(self.STRATEGIES)],
            )
            for i in range(max(1, count - 1))
        ]
        if count < 2:
            return cp_sat
        return [*cp_sat, ArmSection(kind="jobshop_tabu", seed=solver.seed + count - 1)]


class RoutingOptimizer(PortfolioOptimizer):
    """CVRP / VRPTW on PyVRP and OR-Tools routing arms (GLS, tabu, simulated annealing)."""

    problem_types = (RoutingProblem,)
    solver_type = "routing"

    def default_arms(self, problem: Problem, count: int) -> list[ArmSection]:
        assert isinstance(problem, RoutingProblem)
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
                seed=self.config.solver.seed + i,
                receive=i > 0,  # the anchor: never worse than its own run
                options=cycle[i % len(cycle)][1],
            )
            for i in range(count)
        ]


def optimizer_for(problem: Problem, config: OptimizeJobConfig) -> PortfolioOptimizer:
    return SchedulingOptimizer(config) if isinstance(problem, JobShopProblem) else RoutingOptimizer(config)


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
