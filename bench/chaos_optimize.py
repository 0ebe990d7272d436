"""Optimization row of ``python -m bench.chaos``: the node running the leading arm killed mid-solve.

It runs on a multi-node cluster of its own (``tests/optimize/node_loss_run.py``, the child behind
``tests/optimize/test_node_loss.py``), not the shared one: nodes come and go.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.optimize.node_loss_run import node_loss_config
from tests.train.test_drain import run_child, tail

CHILD_TIMEOUT_S = 300


def node_with_the_leader_killed(ctx: Any) -> list[Any]:
    from bench.chaos import Row

    scenario = "node with the leading arm killed (ta01, CP-SAT + tabu, one worker node each)"
    measure = "incumbent kept; seconds until search continues"
    workdir = ctx.workdir / "node-loss"
    workdir.mkdir(parents=True, exist_ok=True)
    config_path, result_path, log_path = (workdir / f for f in ("config.json", "result.json", "child.log"))
    config_path.write_text(json.dumps(node_loss_config(workdir).model_dump(mode="json")))
    try:
        run_child(config_path, result_path, log_path, module="tests.optimize.node_loss_run",
                  timeout_s=CHILD_TIMEOUT_S)
    except pytest.fail.Exception:  # the runner's timeout; one scenario must not end the table
        return [Row(scenario, measure, f"child timed out after {CHILD_TIMEOUT_S} s", "yes; <= 10 s")]
    result = json.loads(result_path.read_text()) if result_path.exists() else {"errors": [tail(log_path, 5)]}
    if result["errors"]:
        return [Row(scenario, measure, f"error: {result['errors'][0]}"[:200], "yes; <= 10 s")]
    summary = result["summary"]
    leader = summary["arms"][result["leader"]]
    kept = (summary["feasible"] and summary["objective"] <= result["objective_before"]
            and summary["store_restarts"] == 0
            and result["store_incarnation_before"] == result["store_incarnation_after"])
    detail = (f"{'yes' if kept else 'NO'} ({result['objective_before']} before the kill, {summary['objective']:g} "
              f"final, {summary['status']}; {result['leader']} {leader['ended_by']}); "
              f"{result['continued_after_s']:.1f} s")
    return [Row(scenario, measure, detail, "yes; <= 10 s")]
