"""Drain row of ``python -m bench.chaos``: the node of a training run drained through GCS (a spot notice).

Each trial runs on a two-node cluster of its own (``tests/train/drain_run.py``, the child behind
``tests/train/test_drain.py``): a draining node takes no new work, so the shared cluster must never be
drained. Steps lost: what the interrupted start did beyond the step the next start resumed after.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from tests.train.conftest import training_config
from tests.train.test_drain import run_child, tail

CHILD_TIMEOUT_S = 300


def drain_trial(workdir: Path, data_dir: Path) -> tuple[int, float] | str:
    """(steps lost, seconds from the drain request to the notice checkpoint), or why the trial failed."""
    from bench.chaos import steps_lost

    workdir.mkdir(parents=True, exist_ok=True)
    config = training_config(data_dir, str(workdir / "storage"), f"sqlite:///{workdir}/m.db", run_name="drain",
                             training={"num_epochs": 20, "batch_size": 16,
                                       "checkpointing": {"frequency": 1000, "keep_best": 1}})
    config_path, result_path, log_path = (workdir / f for f in ("config.json", "result.json", "child.log"))
    config_path.write_text(json.dumps(config.model_dump(mode="json")))
    try:
        run_child(config_path, result_path, log_path, timeout_s=CHILD_TIMEOUT_S)
    except pytest.fail.Exception:  # the runner's timeout; one trial must not end the table
        return f"child timed out after {CHILD_TIMEOUT_S} s"
    result = json.loads(result_path.read_text()) if result_path.exists() else {"errors": [tail(log_path, 5)]}
    if result["errors"]:
        return f"error: {result['errors'][0]}"[:200]
    lost, _ = steps_lost(result_path.with_suffix(".steps"))
    times = result["times"]
    return lost, times["checkpoint_written"] - times["drain_requested"]


def node_drain(ctx: Any) -> list[Any]:
    from bench.chaos import Row, median_max

    scenario = "notice preemption: node drained through GCS (checkpoint, restart elsewhere)"
    measure, goal = "steps lost", "<= 1 median"
    outcomes = [drain_trial(ctx.workdir / f"drain-{trial}", ctx.training_data.parent)
                for trial in range(2 if ctx.quick else 5)]
    failed = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if failed:
        return [Row(scenario, measure, f"{len(failed)} of {len(outcomes)} trials failed: {failed[0]}", goal)]
    lost = [float(lost) for lost, _ in outcomes]
    to_checkpoint = statistics.median(seconds for _, seconds in outcomes)
    return [Row(scenario, measure, f"{median_max(lost)}; notice checkpoint {to_checkpoint:.1f} s after the "
                                   "drain request (median)", goal)]
