"""docs/architecture.md's "a problem kind": ``toy_kind.py`` is the whole plug-in, one line registers it."""

from __future__ import annotations

from jobs.optimize import main as optimize_job
from mlray.optimize import read_problem, register_kind, solve

from .toy_kind import TOY_KIND, JobOrder, weighted_completion

register_kind(TOY_KIND)

JOBS = [(3, 1), (1, 4), (4, 2), (2, 2), (5, 1), (2, 3)]  # (processing time, weight)
# Smith's rule: increasing processing time / weight is optimal.
OPTIMUM = weighted_completion(tuple(JOBS), sorted(range(len(JOBS)), key=lambda j: JOBS[j][0] / JOBS[j][1]))


def write_instance(tmp_path):
    path = tmp_path / "six.txt"
    path.write_text("smtwc six  # a toy instance\n" + "".join(f"{p} {w}\n" for p, w in JOBS))
    return path


def test_the_kind_reads_its_files_and_checks_its_solutions(tmp_path):
    problem = read_problem(write_instance(tmp_path))
    assert (problem.kind, problem.name, problem.jobs) == ("smtwc", "six", tuple(JOBS))
    in_order = JobOrder(tuple(range(6)))
    assert TOY_KIND.check(problem, in_order, weighted_completion(problem.jobs, in_order.order)) == []
    assert TOY_KIND.check(problem, JobOrder((0, 1, 2, 3, 4, 4)))  # not a permutation
    assert TOY_KIND.check(problem, JobOrder(tuple(range(6))), OPTIMUM - 1)  # a cost claimed too low


def test_solve_finds_the_optimum_with_the_kinds_default_portfolio(ray_cluster, tmp_path, make_config):
    problem = read_problem(write_instance(tmp_path))
    result = solve(problem, make_config(**{"solver.time_limit": 2}))
    assert result.kind == "smtwc" and result.feasible, result.violations
    assert TOY_KIND.check(problem, result.solution, result.objective) == []
    assert result.objective == OPTIMUM
    assert [s.name for s in result.arm_stats] == ["swap"] and set(result.plots) == {"history"}
    # The controller's path: "focused" once a poll saw the leader after the race, "stopping" if a poll saw the
    # stop flag before the arms returned at the deadline by themselves.
    order = ["starting", "racing", "focused", "stopping", "done"]
    assert result.states[:2] == order[:2] and result.states[-1] == "done", result.states
    assert result.states == sorted(result.states, key=order.index), result.states


def test_the_optimize_job_solves_a_file_of_the_kind(ray_cluster, tmp_path, make_config):
    config = make_config(**{"problem.path": str(write_instance(tmp_path)), "problem.kind": "smtwc",
                            "solver.time_limit": 2, "output.plots": False})
    summary = optimize_job(config)
    assert summary["status"] != "failed" and summary["kind"] == "smtwc", summary
    assert summary["feasible"] and summary["objective"] == OPTIMUM
