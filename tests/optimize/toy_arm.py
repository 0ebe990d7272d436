"""A toy solver arm, whole in this file: random-priority dispatching for job shop.

It shows that an arm is one module and one line of config (``solver.arms: [{kind:
"tests.optimize.toy_arm:RandomDispatchArm"}]``), or one line in ``ARM_KINDS`` for a short name. Each
round builds dispatch schedules (the next operation is the one that can start first; ties go to a random
job priority) until the round has to end, publishing each one that beats the arm's best.
"""

from __future__ import annotations

import random
import time

from mlray.optimize.arms.base import Arm, RoundResult, StoreLink
from mlray.optimize.incumbent import Incumbent
from mlray.optimize.problems import JobShopProblem, JobShopSchedule, makespan


def dispatch(problem: JobShopProblem, rng: random.Random) -> JobShopSchedule:
    """A semi-active schedule: operations in job order, each machine one at a time."""
    jobs = problem.jobs
    priority = [rng.random() for _ in jobs]
    next_op, job_ready, machine_free = [0] * len(jobs), [0] * len(jobs), {}
    starts = [[0] * len(job) for job in jobs]

    def start_of(j: int) -> int:
        return max(job_ready[j], machine_free.get(jobs[j][next_op[j]][0], 0))

    for _ in range(sum(map(len, jobs))):
        unfinished = (j for j in range(len(jobs)) if next_op[j] < len(jobs[j]))
        j = min(unfinished, key=lambda j: (start_of(j), priority[j]))
        machine, duration = jobs[j][next_op[j]]
        starts[j][next_op[j]] = start = start_of(j)
        job_ready[j] = machine_free[machine] = start + duration
        next_op[j] += 1
    return JobShopSchedule(tuple(map(tuple, starts)))


class RandomDispatchArm(Arm):
    problem_type = JobShopProblem

    def solve_round(self, start: Incumbent | None, time_limit: float, link: StoreLink,
                    round_index: int) -> RoundResult:
        rng = random.Random(self.spec.seed * 1_000_003 + round_index)
        ends = time.monotonic() + time_limit
        while time.monotonic() < ends and not link.should_stop_round():
            schedule = dispatch(self.problem, rng)
            link.publish(makespan(self.problem, schedule), schedule.to_payload())
        return RoundResult("time_limit")
