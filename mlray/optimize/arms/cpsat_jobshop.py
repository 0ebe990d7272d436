"""CP-SAT on the job shop, in rounds that share incumbents.

Each round re-solves the same model with one more constraint,
``makespan <= best``, and a complete hint of the best schedule (starts, ends
and makespan), which CP-SAT takes as its first solution ("complete_hint"), so
its LNS workers start from it at once; a round that ends OPTIMAL proves its
objective is a bound. A watcher thread stops the round (``stop_search``) when
the store says stop, a better outside incumbent is waiting, or the arm's
thread allotment changed; the solution callback publishes without blocking.
An arm given more workers than its race share (the leader after the race)
runs CP-SAT's own portfolio on them, without its strategy options.
"""

from __future__ import annotations

import threading
from typing import Any

from ortools.sat.python import cp_model

from mlray.optimize.arms.base import Arm, ArmSpec, RoundResult, StoreLink
from mlray.optimize.incumbent import Incumbent
from mlray.optimize.problems import JobShopProblem, JobShopSchedule


class PublishingCallback(cp_model.CpSolverSolutionCallback):
    """Defined at module level: a callback class from ``__main__`` kills the actor when unpickled."""

    def __init__(self, arm: CpSatJobShopArm, link: StoreLink) -> None:
        super().__init__()
        self.arm = arm
        self.link = link

    def on_solution_callback(self) -> None:
        starts = tuple(tuple(self.value(v) for v in job) for job in self.arm.starts)
        self.link.publish(int(self.objective_value), JobShopSchedule(starts).to_payload())


def apply_parameters(parameters: Any, options: dict[str, Any]) -> None:
    """Set CP-SAT parameters by name; enum values by their names, repeated fields from lists."""
    for name, value in options.items():
        if name.startswith("_") or not hasattr(parameters, name):
            raise ValueError(f"unknown CP-SAT parameter {name!r}")
        current = getattr(parameters, name)
        if isinstance(value, list):
            for item in value:
                current.append(item)
        elif isinstance(value, str) and hasattr(type(current), "__members__"):
            members = type(current).__members__
            if value not in members:
                raise ValueError(f"CP-SAT parameter {name}: expected one of {sorted(members)}, got {value!r}")
            setattr(parameters, name, members[value])
        else:
            setattr(parameters, name, value)


class CpSatJobShopArm(Arm):
    problem_type = JobShopProblem

    def __init__(self, problem: JobShopProblem, spec: ArmSpec, cpus: int) -> None:  # type: ignore[override]
        super().__init__(problem, spec, cpus)
        self.options = dict(spec.options)
        self.fixed_workers = self.options.pop("num_workers", None)
        self.race_workers = cpus  # the share it was built for; beyond it the strategy options are dropped
        self._build_model(problem)

    @classmethod
    def thread_cap(cls, spec: ArmSpec) -> int | None:
        """Any number of CP-SAT workers, unless ``options.num_workers`` fixes it."""
        workers = spec.options.get("num_workers")
        return None if workers is None else int(workers)

    def _build_model(self, problem: JobShopProblem) -> None:
        model = cp_model.CpModel()
        horizon = problem.horizon
        self.starts: list[list[cp_model.IntVar]] = []
        self.ends: list[list[cp_model.IntVar]] = []
        ends = []
        by_machine: dict[int, list[Any]] = {}
        for j, job in enumerate(problem.jobs):
            job_starts, job_ends = [], []
            previous_end = None
            for o, (machine, duration) in enumerate(job):
                start = model.new_int_var(0, horizon, f"s{j}_{o}")
                end = model.new_int_var(0, horizon, f"e{j}_{o}")
                by_machine.setdefault(machine, []).append(
                    model.new_interval_var(start, duration, end, f"i{j}_{o}")
                )
                if previous_end is not None:
                    model.add(start >= previous_end)
                previous_end = end
                job_starts.append(start)
                job_ends.append(end)
            ends.append(previous_end)
            self.starts.append(job_starts)
            self.ends.append(job_ends)
        for intervals in by_machine.values():
            model.add_no_overlap(intervals)
        self.makespan = model.new_int_var(0, horizon, "makespan")
        model.add_max_equality(self.makespan, ends)
        model.minimize(self.makespan)
        flat = [v for job in self.starts for v in job]
        # Only used by FIXED_SEARCH / PORTFOLIO branching: earliest operation first.
        model.add_decision_strategy(flat, cp_model.CHOOSE_LOWEST_MIN, cp_model.SELECT_MIN_VALUE)
        self.model = model

    def _hint(self, schedule: JobShopSchedule) -> None:
        """Every variable hinted, so the hint is complete and CP-SAT starts from it as a solution."""
        self.model.clear_hints()
        makespan = 0
        for j, job in enumerate(self.problem.jobs):  # type: ignore[attr-defined]
            for o, (_, duration) in enumerate(job):
                begin = schedule.starts[j][o]
                self.model.add_hint(self.starts[j][o], begin)
                self.model.add_hint(self.ends[j][o], begin + duration)
                makespan = max(makespan, begin + duration)
        self.model.add_hint(self.makespan, makespan)

    def solve_round(
        self, start: Incumbent | None, time_limit: float, link: StoreLink, round_index: int
    ) -> RoundResult:
        if start is not None:
            self.model.add(self.makespan <= start.objective)
            self._hint(JobShopSchedule.from_payload(start.payload))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit
        workers = int(self.fixed_workers or self.cpus)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = self.spec.seed + 1000 * round_index
        if self.fixed_workers is not None or workers <= self.race_workers:
            apply_parameters(solver.parameters, self.options)
        # else: the arm holds the CPUs of the parked arms. A strategy such as optimize_with_core would bind
        # every worker; CP-SAT's own multi-worker portfolio already runs those strategies side by side.
        done = threading.Event()
        interrupted = threading.Event()

        def watch() -> None:
            while not done.wait(link.limits.poll_interval):
                if link.should_stop_round():
                    interrupted.set()
                    solver.stop_search()
                    return

        watcher = threading.Thread(target=watch, name=f"{self.spec.name}-watch", daemon=True)
        watcher.start()
        try:
            status = solver.solve(self.model, PublishingCallback(self, link))
        finally:
            done.set()
            watcher.join()
        if status == cp_model.INFEASIBLE:
            return RoundResult("optimal", exhausted=True)
        if status == cp_model.OPTIMAL:
            return RoundResult("optimal", bound=int(solver.objective_value))
        if status == cp_model.MODEL_INVALID:
            raise RuntimeError(f"arm {self.spec.name}: CP-SAT model invalid: {self.model.validate()}")
        # Valid for the restricted model, so for the whole problem once capped by the start.
        bound = int(solver.best_objective_bound)
        if start is not None:
            bound = min(bound, start.objective)
        return RoundResult("interrupted" if interrupted.is_set() else "iteration", bound=bound)
