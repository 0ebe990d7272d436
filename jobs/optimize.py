"""Portfolio optimisation: ``python -m jobs.optimize --config configs/optimize.yaml [--set problem.path=X]``.

Progress (incumbent, bound, gap, arm) goes to the log; the last stdout line is
the JSON summary. Runs the same under ``ray job submit``. ``problem.path``: a shipped instance
by name, or a file (relative: under ``storage.uri``; absolute or ``gs://``: as given).
"""

from __future__ import annotations

from typing import Any

from mlray.config import OptimizeJobConfig
from mlray.entrypoint import run_registered


def main(config: OptimizeJobConfig) -> dict[str, Any]:
    from mlray.optimize import ProblemError, optimizer_for
    from mlray.optimize.loading import load_problem

    try:
        problem = load_problem(config.problem.path, config.problem.kind, config.storage)
        optimizer = optimizer_for(problem, config)
    except (ProblemError, ValueError) as exc:
        return {"status": "failed", "error": str(exc)}
    result = optimizer.parallel_solve(problem)
    summary = result.summary()
    if not result.feasible:
        summary["status"] = "failed"
    return summary


if __name__ == "__main__":
    run_registered("optimize")
