"""Tabu search for the job shop: the local search CP-SAT does not have, compiled with numba.

Each round runs one walker per solver thread (``jobshop_tabu_core.tabu_search``, numba
``nogil``, so walkers on threads of this process run in parallel), all from the round's
start: the store's incumbent when sharing (so CP-SAT's improvements restart the walk at
once, a restart costs nothing here), the arm's own best otherwise, or a randomised
greedy schedule. Walkers run in chunks of about ``CHUNK_SECONDS`` and publish a new best
as a semi-active schedule (every operation at its head), which CP-SAT arms then take as
their hint. The round ends at its time limit, when the store says stop or the thread
allotment changes (``StoreLink.should_stop_round``), or as soon as another arm's
incumbent beats this round's best (a handover: the next round starts from it).

Every round also reports the trivial lower bound (longest job, busiest machine), and a
round whose critical path lies on one machine or in one job proves its makespan optimal.

Options (``solver.arms[].options``): ``threads`` (fixes the walkers; default: the
threads allotted), ``tenure_min`` / ``tenure_span`` (a reversed swap stays tabu for
``tenure_min + U[0, tenure_span]`` iterations; default ``10 + jobs // machines`` and 40 % of
it), ``stall`` (iterations without a new best before a restart from the best, default
10000), ``shake`` (random critical swaps at a restart, default 3).

Length: the disjunctive graph, the walker and the arm are one algorithm's Python side, read together;
its compiled kernels are already apart in ``jobshop_tabu_core.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlray.optimize.arms import jobshop_tabu_core as core
from mlray.optimize.arms.base import Arm, ArmSpec, RoundResult, StoreLink
from mlray.optimize.incumbent import Incumbent
from mlray.optimize.problems import JobShopProblem, JobShopSchedule

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.05  # a walker returns to Python this often: publish, look at the stop flag
OPTIONS = ("threads", "tenure_min", "tenure_span", "stall", "shake")


@dataclass(frozen=True)
class JobShopGraph:
    """The fixed part of the disjunctive graph: operations numbered job by job."""

    duration: np.ndarray
    machine: np.ndarray
    job_prev: np.ndarray
    job_next: np.ndarray
    first_op: tuple[int, ...]  # of each job
    lower_bound: int  # longest job, busiest machine

    @classmethod
    def of(cls, problem: JobShopProblem) -> JobShopGraph:
        duration, machine, job_prev, job_next, first_op = [], [], [], [], []
        for job in problem.jobs:
            first_op.append(len(duration))
            for o, (m, d) in enumerate(job):
                index = len(duration)
                duration.append(d)
                machine.append(m)
                job_prev.append(index - 1 if o > 0 else -1)
                job_next.append(index + 1 if o < len(job) - 1 else -1)
        loads: dict[int, int] = {}
        for m, d in zip(machine, duration, strict=True):
            loads[m] = loads.get(m, 0) + d
        lower_bound = max(max(sum(d for _, d in job) for job in problem.jobs), max(loads.values()))
        as_array = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
        return cls(
            as_array(duration), as_array(machine), as_array(job_prev), as_array(job_next),
            tuple(first_op), lower_bound,
        )

    @property
    def size(self) -> int:
        return int(self.duration.shape[0])

    def orders_from_starts(self, starts: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
        """Machine orders (prev, next) of a schedule: operations of a machine by start time."""
        keyed = sorted(
            (int(self.machine[first + o]), start, first + o)
            for first, job in zip(self.first_op, starts, strict=True)
            for o, start in enumerate(job)
        )
        return self._link([(m, op) for m, _, op in keyed])

    def greedy_orders(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A feasible start: repeatedly schedule the job's next operation that can start earliest,
        ties to the most work remaining, then at random."""
        next_op = list(self.first_op)
        job_ready = [0] * len(next_op)
        machine_ready: dict[int, int] = {}
        remaining = [int(self._job_work(j)) for j in range(len(next_op))]
        sequence = []
        while True:
            best, best_key = -1, None
            for j, op in enumerate(next_op):
                if op < 0:
                    continue
                m = int(self.machine[op])
                begin = max(job_ready[j], machine_ready.get(m, 0))
                key = (begin, -remaining[j], rng.random())
                if best_key is None or key < best_key:
                    best, best_key = j, key
            if best < 0:
                break
            op = next_op[best]
            m, d = int(self.machine[op]), int(self.duration[op])
            end = max(job_ready[best], machine_ready.get(m, 0)) + d
            job_ready[best] = machine_ready[m] = end
            remaining[best] -= d
            sequence.append((m, op))
            next_op[best] = int(self.job_next[op])
        return self._link(sequence)

    def makespan(self, orders: tuple[np.ndarray, np.ndarray], head: np.ndarray | None = None) -> int:
        """The makespan of machine orders (heads written to ``head`` if given); -1 if they have a cycle."""
        n = self.size
        work = [np.zeros(n, dtype=np.int64) for _ in range(4)]
        return int(
            core.evaluate(
                self.duration, self.job_prev, self.job_next, orders[0], orders[1],
                work[0] if head is None else head, *work[1:],
            )
        )

    def _job_work(self, j: int) -> int:
        total, op = 0, self.first_op[j]
        while op >= 0:
            total += int(self.duration[op])
            op = int(self.job_next[op])
        return total

    def _link(self, sequence: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Machine orders from (machine, operation) pairs listed in each machine's order."""
        prev = np.full(self.size, -1, dtype=np.int64)
        nxt = np.full(self.size, -1, dtype=np.int64)
        last: dict[int, int] = {}
        for m, op in sequence:
            if m in last:
                prev[op] = last[m]
                nxt[last[m]] = op
            last[m] = op
        return prev, nxt


class Walker:
    """One tabu walk: its arrays, counters and parameters; ``run`` continues it for some iterations."""

    def __init__(
        self, graph: JobShopGraph, orders: tuple[np.ndarray, np.ndarray], params: dict[str, int], seed: int
    ) -> None:
        n = graph.size
        self.graph = graph
        self.machine_prev, self.machine_next = orders[0].copy(), orders[1].copy()
        self.best_prev, self.best_next = self.machine_prev.copy(), self.machine_next.copy()
        self.tabu = np.zeros(n * n, dtype=np.int64)
        self.head = np.zeros(n, dtype=np.int64)
        self.tail = np.zeros(n, dtype=np.int64)
        self.order = np.zeros(n, dtype=np.int64)
        self.indegree = np.zeros(n, dtype=np.int64)
        self.path = np.zeros(n, dtype=np.int64)
        self.moves = np.zeros(2 * n, dtype=np.int64)
        self.state = np.zeros(core.STATE_SIZE, dtype=np.int64)
        self.state[core.BEST] = -1
        self.params = np.zeros(core.PARAMS_SIZE, dtype=np.int64)
        self.params[core.TENURE_MIN] = params["tenure_min"]
        self.params[core.TENURE_SPAN] = params["tenure_span"]
        self.params[core.STALL] = params["stall"]
        self.params[core.SHAKE] = params["shake"]
        self.params[core.SEED] = seed % (2**31)

    def run(self, iterations: int) -> int:
        """The best makespan so far."""
        g = self.graph
        return int(
            core.tabu_search(
                g.duration, g.machine, g.job_prev, g.job_next, self.machine_prev, self.machine_next,
                self.best_prev, self.best_next, self.tabu, self.head, self.tail, self.order, self.indegree,
                self.path, self.moves, self.state, self.params, iterations,
            )
        )

    @property
    def best(self) -> int:
        return int(self.state[core.BEST])

    @property
    def iterations(self) -> int:
        return int(self.state[core.ITERATION])

    @property
    def optimal(self) -> bool:
        return bool(self.state[core.OPTIMAL])

    def best_schedule(self) -> tuple[int, JobShopSchedule]:
        """The best schedule found, semi-active (every operation at its head), and its makespan."""
        head = np.zeros(self.graph.size, dtype=np.int64)
        makespan = self.graph.makespan((self.best_prev, self.best_next), head)
        return makespan, schedule_of(self.graph, head)


def schedule_of(graph: JobShopGraph, head: np.ndarray) -> JobShopSchedule:
    starts = []
    for first in graph.first_op:
        job, op = [], first
        while op >= 0:
            job.append(int(head[op]))
            op = int(graph.job_next[op])
        starts.append(tuple(job))
    return JobShopSchedule(tuple(starts))


def tabu_parameters(problem: JobShopProblem, options: dict[str, Any]) -> dict[str, int]:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"jobshop_tabu options: unknown {unknown}; expected some of {list(OPTIONS)}")
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "threads" else 0):
            raise ValueError(
                f"jobshop_tabu options.{name}: expected an integer >= 0 (threads >= 1), got {value!r}"
            )
    tenure_min = options.get("tenure_min", 10 + len(problem.jobs) // problem.num_machines)
    return {
        "tenure_min": tenure_min,
        "tenure_span": options.get("tenure_span", max(1, (4 * tenure_min) // 10)),
        "stall": options.get("stall", 10000),
        "shake": options.get("shake", 3),
    }


class JobShopTabuArm(Arm):
    problem_type = JobShopProblem

    def __init__(self, problem: JobShopProblem, spec: ArmSpec, cpus: int) -> None:  # type: ignore[override]
        super().__init__(problem, spec, cpus)
        self.params = tabu_parameters(problem, spec.options)
        self.fixed_threads = spec.options.get("threads")
        self.graph = JobShopGraph.of(problem)
        self.rng = np.random.default_rng(spec.seed)
        started = time.perf_counter()
        Walker(self.graph, self.graph.greedy_orders(self.rng), self.params, spec.seed).run(1)
        # Compiled on the first call of a process, read from numba's cache after (see the bench).
        self.warmup_seconds = time.perf_counter() - started
        self.iterations = 0
        self.restarts = 0

    @classmethod
    def thread_cap(cls, spec: ArmSpec) -> int | None:
        """As many walkers as threads allotted, unless ``options.threads`` fixes it."""
        threads = spec.options.get("threads")
        return None if threads is None else int(threads)

    def solve_round(
        self, start: Incumbent | None, time_limit: float, link: StoreLink, round_index: int
    ) -> RoundResult:
        deadline = time.monotonic() + time_limit
        orders = None
        if start is not None:
            orders = self.graph.orders_from_starts(JobShopSchedule.from_payload(start.payload).starts)
            if self.graph.makespan(orders) < 0:  # possible with zero durations: ties in start times
                log.warning("arm %s: the start's machine orders have a cycle; greedy start", self.spec.name)
                orders = None
        if orders is None:
            orders = self.graph.greedy_orders(self.rng)
        count = int(self.fixed_threads or max(1, self.cpus))
        seeds = [self.spec.seed * 7919 + round_index * 131 + k for k in range(count)]
        walkers = [Walker(self.graph, orders, self.params, seed) for seed in seeds]
        stop = threading.Event()
        proven: list[int] = []
        threads = [
            threading.Thread(target=self._walk, args=(w, link, stop, proven), daemon=True, name=f"tabu-{k}")
            for k, w in enumerate(walkers)
        ]
        for thread in threads:
            thread.start()
        ended_by = "iteration"
        try:
            while not stop.wait(link.limits.poll_interval):
                if time.monotonic() >= deadline:
                    break
                if link.should_stop_round() or self._outside_better(link):
                    ended_by = "interrupted"
                    break
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        self.iterations += sum(w.iterations for w in walkers)
        self.restarts += sum(int(w.state[core.RESTARTS]) for w in walkers)
        if proven:
            return RoundResult("optimal", bound=min(proven))
        return RoundResult(ended_by, bound=self.graph.lower_bound)

    def _outside_better(self, link: StoreLink) -> bool:
        """Another arm's incumbent beats this round's best: restart from it now (a restart is cheap)."""
        outside = link.global_incumbent
        if not link.receives or outside is None or outside.arm == self.spec.name:
            return False
        return link.round_best is None or outside.objective < link.round_best

    def _walk(self, walker: Walker, link: StoreLink, stop: threading.Event, proven: list[int]) -> None:
        iterations, published = 64, None
        while not stop.is_set():
            began = time.perf_counter()
            best = walker.run(iterations)
            spent = time.perf_counter() - began
            if published is None or best < published:
                makespan, schedule = walker.best_schedule()
                link.publish(makespan, schedule.to_payload())
                published = best
            if walker.optimal:
                proven.append(walker.best)
                stop.set()
                return
            # Aim at CHUNK_SECONDS per call, growing or shrinking by at most 4x at a time.
            scale = min(4.0, max(0.25, CHUNK_SECONDS / max(spent, 1e-6)))
            iterations = max(16, int(iterations * scale))
