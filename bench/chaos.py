"""``python -m bench.chaos [--quick] [--only NAME ...]``: faults made for real, one table of what each costs.

Scenarios register themselves with ``@scenario("name")`` and return rows
(scenario, measure, result, goal); training and serving add theirs side by side.
All of them share one local Ray cluster started here (``ChaosContext``). The
table goes to ``bench/results/chaos.md`` and, by hand, to docs/benchmarks-chaos.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import markdown_table, write_result


@dataclass
class Row:
    scenario: str
    measure: str
    result: str
    goal: str


@dataclass
class ChaosContext:
    """What every scenario may use: the shared cluster, a scratch folder, the small training data."""

    quick: bool
    workdir: Path
    gcs_address: str
    dashboard_url: str
    training_data: Path


Scenario = Callable[[ChaosContext], list[Row]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    """Register a scenario; rows appear in registration order."""

    def register(function: Scenario) -> Scenario:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = function
        return function

    return register


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def median_max(values: list[float]) -> str:
    return f"median {statistics.median(values):g}, max {max(values):g} (n={len(values)})"


# ---------------------------------------------------------------------------------------------- training


def training_config(ctx: ChaosContext, run_name: str, hidden: list[int] | None = None, epochs: int = 12,
                    **checkpointing: Any):
    from mlray.config import TrainJobConfig

    return TrainJobConfig.model_validate({
        "run_name": run_name,
        "data": {"kwargs": {"path": str(ctx.training_data)}},
        "model": {"kwargs": {"hidden": hidden or [8], "dropout": 0.2}},
        "training": {"num_workers": 2, "num_epochs": epochs, "batch_size": 16, "lr": 0.01, "lr_decay": 0.9,
                     "stop_check_batches": 4, "max_failures": 3,
                     "checkpointing": {"frequency": 1000, "keep_best": 1, **checkpointing}},
        "timeouts": {"total_runtime": None, "iteration": None, "no_improvement": None},
        "mlflow": {"enabled": False},
        "storage": {"uri": str(ctx.workdir / "storage")},
    })


def steps_lost(log: Path) -> tuple[int, int]:
    """(steps lost, last step before the fault) between the first two starts of the workers in a step log:
    the steps the first start took beyond the one the second start resumed after."""
    from mlray.train.step_log import read_step_log

    before, after = read_step_log(log)[:2]
    last, resumed_after = before[-1][0], after[0][0] - 1
    return last - resumed_after, last


def step_trigger(log: Path, after_steps: int) -> Callable[[], bool]:
    from mlray.train.step_log import read_step_log

    def reached() -> bool:
        parts = read_step_log(log)
        return bool(parts) and parts[-1][-1][0] >= after_steps

    return reached


def signal_rank0_when(log: Path, after_steps: int, signum: int) -> threading.Thread:
    """Send ``signum`` to the rank-0 worker once it has taken ``after_steps`` steps (a thread)."""
    from mlray.train.step_log import step_log_pid

    def fire() -> None:
        wait_until(step_trigger(log, after_steps), 300, f"step {after_steps}")
        os.kill(step_log_pid(log), signum)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


@scenario("training: SIGTERM to the driver")
def driver_sigterm(ctx: ChaosContext) -> list[Row]:
    from mlray.train.runner import run_training
    from mlray.train.step_log import StepLog

    lost = []
    for trial in range(3 if ctx.quick else 5):
        config = training_config(ctx, f"driver-sigterm-{trial}")
        log = ctx.workdir / f"{config.run_name}.steps"

        def terminate(log: Path = log, at: int = 90 + 17 * trial) -> None:  # the job's own SIGTERM handler
            wait_until(step_trigger(log, at), 300, f"step {at}")
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=terminate, daemon=True).start()
        stopped = run_training(config, callbacks=[StepLog(str(log))])
        assert stopped["status"] == "preempted", stopped
        resumed = run_training(config, callbacks=[StepLog(str(log))])
        assert resumed["status"] == "completed", resumed
        lost.append(steps_lost(log)[0])
    return [Row("notice preemption: SIGTERM to the driver (stop, checkpoint, resubmit)", "steps lost",
                median_max(lost), "<= 1 median")]


def lost_to_signalled_workers(ctx: ChaosContext, name: str, signum: int, trials: int, first_at: int,
                              **checkpointing: Any) -> list[int]:
    """Steps lost per run when rank 0 gets ``signum`` at step ``first_at`` (later in each next trial)."""
    from mlray.train.runner import run_training
    from mlray.train.step_log import StepLog

    lost = []
    for trial in range(trials):
        config = training_config(ctx, f"{name}-{trial}", **checkpointing)
        log = ctx.workdir / f"{config.run_name}.steps"
        signaller = signal_rank0_when(log, first_at + 17 * trial, signum)
        summary = run_training(config, callbacks=[StepLog(str(log))])
        signaller.join(timeout=5)
        assert summary["status"] == "completed", summary
        lost.append(steps_lost(log)[0])
    return lost


@scenario("training: SIGTERM to a worker")
def worker_sigterm(ctx: ChaosContext) -> list[Row]:
    lost = lost_to_signalled_workers(ctx, "worker-sigterm", signal.SIGTERM, 3 if ctx.quick else 5, 90)
    return [Row("notice preemption: SIGTERM to a worker (checkpoint, Ray Train restarts the group)",
                "steps lost", median_max(lost), "<= 1 median")]


@scenario("training: node drain")
def node_drain(ctx: ChaosContext) -> list[Row]:
    from bench.chaos_drain import node_drain

    return node_drain(ctx)


@scenario("training: SIGKILL without notice")
def worker_sigkill(ctx: ChaosContext) -> list[Row]:
    every = 30
    lost = lost_to_signalled_workers(ctx, "sigkill", signal.SIGKILL, 2 if ctx.quick else 4, 100,
                                     every_n_steps=every)
    return [Row(f"SIGKILL to a worker, no notice, step checkpoints every {every} steps (async upload)",
                "steps lost vs the interval", f"{median_max(lost)}; interval {every}", "<= interval")]


@scenario("training: step checkpoint overhead")
def step_checkpoint_overhead(ctx: ChaosContext) -> list[Row]:
    """Pairs of runs, with and without step checkpoints, alternating which goes first; per pair the ratio of
    the mean time per step (the median step would hide the steps that pay for a checkpoint). The median
    ratio over the pairs: a pair's two runs share the machine's load of the moment, which on a shared
    machine moves the step time by more than the checkpoints do."""
    from mlray.train.runner import run_training
    from mlray.train.step_log import StepLog, read_step_log

    every, hidden, epochs = 50, [256, 256], 20
    ratios: list[float] = []
    mean_step: dict[str, list[float]] = {"none": [], "async": []}
    for trial in range(1 if ctx.quick else 5):
        for kind in (("none", "async") if trial % 2 == 0 else ("async", "none")):
            extra = {"every_n_steps": every} if kind == "async" else {}
            config = training_config(ctx, f"overhead-{kind}-{trial}", hidden=hidden, epochs=epochs, **extra)
            log = ctx.workdir / f"{config.run_name}.steps"
            summary = run_training(config, callbacks=[StepLog(str(log))])
            assert summary["status"] == "completed", summary
            (steps,) = read_step_log(log)
            times = [at for _, _, at in steps[len(steps) // epochs:]]  # the first epoch is warm-up
            mean_step[kind].append((times[-1] - times[0]) / (len(times) - 1))
        ratios.append(mean_step["async"][-1] / mean_step["none"][-1])
    return [Row(f"step checkpoints every {every} steps, async upload (MLP {hidden}, 2 CPU ranks)",
                "step time ratio vs no step checkpoints",
                f"median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f} "
                f"(n={len(ratios)} pairs; {statistics.median(mean_step['async']) * 1e3:.2f} ms vs "
                f"{statistics.median(mean_step['none']) * 1e3:.2f} ms)", "<= 1.03")]


@scenario("training: node lost, not replaced")
def node_lost(ctx: ChaosContext) -> list[Row]:
    return [Row("node lost, not replaced (elastic training)", "seconds until training continues on fewer "
                "workers", "not measured here (needs a multi-node cluster of its own): "
                "`pytest -s tests/train/test_elastic.py` prints it", "<= 30 s")]


# ---------------------------------------------------------------------------------------------- serving


@scenario("serving: replica SIGKILL / node drain under load")
def serving_failed_requests(ctx: ChaosContext) -> list[Row]:
    from bench.chaos_serving import failed_requests

    return failed_requests(ctx)


@scenario("serving: canary regression (latency x3, errors 5 %)")
def serving_canary_regressions(ctx: ChaosContext) -> list[Row]:
    from bench.chaos_serving import canary_regressions

    return canary_regressions(ctx)


# ---------------------------------------------------------------------------------------------- optimization


@scenario("optimization: node with the leading arm killed")
def optimization_node_loss(ctx: ChaosContext) -> list[Row]:
    from bench.chaos_optimize import node_with_the_leader_killed

    return node_with_the_leader_killed(ctx)


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument("--quick", action="store_true", help="fewer trials")
    parser.add_argument("--only", nargs="*", default=None, help=f"scenarios (default all: {list(SCENARIOS)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or []) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; expected some of {list(SCENARIOS)}")

    import logging

    import ray

    from mlray.cluster import init_ray
    from mlray.config import PreprocessJobConfig
    from mlray.storage.emulator import free_port
    from mlray.usecases.preprocess import TRAINING_FILE, run_preprocessing

    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    run_preprocessing(PreprocessJobConfig(output=str(workdir / "data"), driver_trips={
        "num_drivers": 40, "hours": 24, "num_trips": 3000}))
    dashboard_port = free_port()
    init_ray(num_cpus=4, include_dashboard=True, dashboard_port=dashboard_port, log_to_driver=False)
    ctx = ChaosContext(args.quick, workdir, ray.get_runtime_context().gcs_address,
                       f"http://127.0.0.1:{dashboard_port}", workdir / "data" / TRAINING_FILE)
    rows: list[Row] = []
    try:
        for name, function in SCENARIOS.items():
            if args.only is not None and name not in args.only:
                continue
            started = time.monotonic()
            print(f"-- {name}", flush=True)
            try:
                rows += function(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others' rows
                rows.append(Row(name, "error", f"{type(exc).__name__}: {exc}"[:200], ""))
            print(f"   {time.monotonic() - started:.0f} s", flush=True)
    finally:
        ray.shutdown()
    table = markdown_table(["scenario", "measure", "result", "goal"],
                           [[r.scenario, r.measure, r.result, r.goal] for r in rows])
    write_result("chaos", "Chaos: faults made for real", table, save=args.only is None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
