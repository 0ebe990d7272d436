"""Training benchmark: Ray Train DDP vs torchrun DDP, checkpoint upload vs raw gcsfs, recovery times.

``python -m bench.train [--quick] [--workers N] [--rounds N]`` prints a Markdown table and
writes ``bench/results/train.md``. Every ratio compares two numbers measured in
this same run on this machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from bench.report import alternating, markdown_table, write_result  # noqa: E402
from mlray.train.callbacks import TrainingCallback  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUCKET = "mlray-bench"


@dataclass(frozen=True)
class StepSize:
    """A model and batch size of the default use case: how much work one DDP step does between all-reduces."""

    name: str
    hidden: tuple[int, ...]
    batch_size: int

    @property
    def label(self) -> str:
        return f"{self.name} (MLP {'-'.join(map(str, self.hidden))}, batch {self.batch_size})"


# Small: a few ms per step, most of it the all-reduce, so a fixed cost per step shows. Large: tens of
# ms of compute per step, the regime Ray's own "within 2.5 %" claim is about.
SMALL_STEPS = StepSize("small steps", (64, 64), 64)
LARGE_STEPS = StepSize("large steps", (512, 512, 512), 256)


def bench_config(data_path: Path, storage_uri: str, mlflow_uri: str, run_name: str, workers: int, epochs: int,
                 steps: StepSize = SMALL_STEPS, **training: Any):
    from mlray.config import TrainJobConfig

    return TrainJobConfig.model_validate({
        "run_name": run_name,
        "data": {"kwargs": {"path": str(data_path)}},
        "model": {"kwargs": {"hidden": list(steps.hidden)}},
        "training": {"num_workers": workers, "num_epochs": epochs, "batch_size": steps.batch_size,
                     "checkpointing": {"frequency": 1000, "keep_best": 1}, **training},
        "timeouts": {"total_runtime": None, "iteration": None},
        "mlflow": {"tracking_uri": mlflow_uri, "experiment": "bench"},
        "storage": {"uri": storage_uri},
    })


def steps_per_epoch(config) -> int:
    """Optimizer steps each rank takes per epoch (DistributedSampler pads the shards to equal length)."""
    from mlray.train.prepare import load_training_data, split

    training = config.training
    data = split(load_training_data(config), training.validation_fraction, training.seed, config.model.task)
    return math.ceil(math.ceil(len(data.x_train) / training.num_workers) / training.batch_size)


def steady_epoch_time(values: list[float]) -> float:
    """Median epoch time without the first epoch (warm-up)."""
    return statistics.median(values[1:] if len(values) > 1 else values)


def epoch_times(mlflow_uri: str, run_id: str) -> list[float]:
    from mlflow.tracking import MlflowClient

    history = MlflowClient(mlflow_uri).get_metric_history(run_id, "epoch_time_s")
    return [m.value for m in sorted(history, key=lambda m: m.step)]


# -- torchrun side -------------------------------------------------------------------------------
def torchrun_worker(config_path: str, result_path: str, turn_pass: str | None = None) -> None:
    """One torchrun rank: the same loop, data and model as the Ray run, as a plain DDP process.

    ``turn_pass`` (JSON of a ``TurnPass``) makes it take turns with a Ray Train run, epoch by epoch.
    """
    import torch.distributed as dist

    from mlray.config.loader import load_config
    from mlray.config.train import TrainJobConfig
    from mlray.train.loop import LoopSettings, train_loop
    from mlray.train.prepare import load_training_data, model_spec, split
    from mlray.train.session import LocalSession

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    config = load_config(TrainJobConfig, config_path)
    data = split(load_training_data(config), config.training.validation_fraction, config.training.seed,
                 config.model.task)
    session = LocalSession(Path(tempfile.mkdtemp(prefix="torchrun-ckpt-")), rank=rank, world_size=world)
    callbacks = [TurnTaking(TurnPass(**json.loads(turn_pass)))] if turn_pass else []
    train_loop(LoopSettings(config, model_spec(config, data)), data, session, callbacks)
    if rank == 0:
        Path(result_path).write_text(json.dumps([r["epoch_time_s"] for r in session.reports]))
    dist.destroy_process_group()


def start_torchrun(config, workers: int, tmp: Path, turn_pass: TurnPass | None = None) -> subprocess.Popen:
    import yaml

    config_path = tmp / "torchrun.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what Ray gives each worker
    turns = [json.dumps(turn_pass.__dict__)] if turn_pass else []
    with (tmp / "torchrun.log").open("w") as log:  # a file, not a pipe: nobody reads it while the ranks run
        return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={workers}",
                                 "--master-port=29512", "-m", "bench.train", "--torchrun-worker", str(config_path),
                                 str(tmp / "torchrun.json"), *turns],
                                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def torchrun_epoch_times(process: subprocess.Popen, tmp: Path) -> list[float]:
    if process.wait():
        log = (tmp / "torchrun.log").read_text()
        raise RuntimeError(f"torchrun failed ({process.returncode}): {log[-2000:]}")
    return json.loads((tmp / "torchrun.json").read_text())


def run_torchrun(config, workers: int, tmp: Path) -> list[float]:
    return torchrun_epoch_times(start_torchrun(config, workers, tmp), tmp)


# -- epochs taking turns -------------------------------------------------------------------------
@dataclass
class TurnPass:
    """What a rank needs to take turns: picklable for Ray, JSON for torchrun's command line."""

    side: str
    host: str
    port: int
    authkey_hex: str


class TurnTaking(TrainingCallback):
    """Every rank's callback that, after reporting an epoch, waits until its side's next turn.

    The wait falls between the loop's epoch clock stopping (before the report) and
    starting again (the next epoch), so no measured epoch includes it. Picklable until its first
    report, when it connects to the coordinator.
    """

    def __init__(self, turn_pass: TurnPass):
        self._pass = turn_pass
        self._connection: Connection | None = None

    def after_report(self, metrics: dict[str, Any]) -> None:  # per epoch (not step checkpoints)
        try:
            if self._connection is None:
                self._connection = Client((self._pass.host, self._pass.port),
                                          authkey=bytes.fromhex(self._pass.authkey_hex))
                self._connection.send(self._pass.side)
            self._connection.send(metrics["epoch"])
            self._connection.recv()  # the go for the next epoch
        except (EOFError, OSError):  # the coordinator is gone: run on freely
            self._connection = None


class EpochTurns:
    """Two DDP groups alive at once run one epoch each in turn, so each pair of epochs is ~1 s apart.

    This machine's speed drifts over tens of seconds (CPU steal from neighbours), which
    whole runs one after the other cannot cancel. Both groups first finish epoch 1 (warm-up,
    not measured), then epoch e runs on one side and then on the other, the first side
    alternating with e. Both are let go together after the last epoch, so neither side's
    teardown overlaps the other's epochs. A side that is waiting sleeps in a socket read.
    """

    def __init__(self, ranks_per_side: int, last_epoch: int, timeout_s: float = 300):
        self._ranks, self._last_epoch, self._timeout_s = ranks_per_side, last_epoch, timeout_s
        self._authkey = secrets.token_bytes(16)
        self._listener = Listener(("127.0.0.1", 0), authkey=self._authkey)
        self._connections: list[Connection] = []
        self.error: str | None = None
        self._thread = threading.Thread(target=self._coordinate, daemon=True)
        self._thread.start()

    def pass_for(self, side: str) -> TurnPass:
        host, port = self._listener.address
        return TurnPass(side, host, port, self._authkey.hex())

    def _coordinate(self) -> None:
        by_side: dict[str, list[Connection]] = defaultdict(list)
        try:
            while len(self._connections) < 2 * self._ranks:
                connection = self._listener.accept()
                self._connections.append(connection)
                by_side[connection.recv()].append(connection)
            self._finished(self._connections, 1)
            for epoch in range(2, self._last_epoch + 1):
                for side in alternating(by_side, epoch):
                    self._go(by_side[side])
                    self._finished(by_side[side], epoch)
            self._go(self._connections)
        except (EOFError, OSError, RuntimeError) as exc:  # OSError includes TimeoutError
            self.error = f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _go(connections: list[Connection]) -> None:
        for connection in connections:
            connection.send("go")

    def _finished(self, connections: list[Connection], epoch: int) -> None:
        for connection in connections:
            if not connection.poll(self._timeout_s):
                raise TimeoutError(f"no rank reported epoch {epoch} within {self._timeout_s} s")
            reported = connection.recv()
            if reported != epoch:
                raise RuntimeError(f"a rank reported epoch {reported}, expected {epoch}")

    def close(self, wait_s: float = 10) -> None:
        """Wait briefly for the last go, then release every waiting rank (they run on freely)."""
        self._thread.join(wait_s)
        for connection in self._connections:
            connection.close()
        self._listener.close()


def ddp_epoch_times(config_named: Callable[[str], Any], mlflow_uri: str, tmp: Path, workers: int,
                    rounds: int) -> tuple[float, float, list[float]]:
    """Steady epoch time of Ray Train and of torchrun, alternating which goes first each round.

    On this shared 2-CPU machine a whole run is sometimes 30-100% slower than the next
    (CPU placement, neighbours), so one pair of runs can land anywhere between 0.6 and 2.2.
    Several alternating rounds, each giving a ratio of two runs back to back, and the median of
    those ratios cancel most of that.
    """
    from mlray.train.runner import run_training

    ray_times, torchrun_times, ratios = [], [], []
    for round_index in range(rounds):
        config = config_named(f"ddp-{round_index}")
        sides = {
            "ray": lambda: steady_epoch_time(epoch_times(mlflow_uri, run_training(config)["mlflow_run_id"])),
            "torchrun": lambda: steady_epoch_time(run_torchrun(config, workers, tmp)),
        }
        measured = {name: sides[name]() for name in alternating(sides, round_index)}
        ray_times.append(measured["ray"])
        torchrun_times.append(measured["torchrun"])
        ratios.append(measured["ray"] / measured["torchrun"])
    return statistics.median(ray_times), statistics.median(torchrun_times), ratios


@dataclass
class EpochPairs:
    """Epoch times (s) of the two runs taking turns, epochs 2..N of each round."""

    rounds: list[list[tuple[float, float]]]  # per round: (Ray Train, torchrun) of each epoch

    @property
    def pairs(self) -> list[tuple[float, float]]:
        return [pair for round_pairs in self.rounds for pair in round_pairs]

    @property
    def ratio(self) -> float:
        return statistics.median(ray / plain for ray, plain in self.pairs)

    @property
    def round_ratios(self) -> list[float]:
        return [statistics.median(ray / plain for ray, plain in r) for r in self.rounds]

    def extra_per_step_ms(self, steps: int) -> float:
        """Ray Train's extra time per optimizer step: the median of the pairs' differences, spread over the steps."""
        return 1000 * statistics.median(ray - plain for ray, plain in self.pairs) / steps

    @property
    def torchrun_epoch_s(self) -> float:
        return statistics.median(plain for _, plain in self.pairs)


@dataclass
class DdpComparison:
    """Ray Train against torchrun at one step size: taking turns, and as whole runs one after the other."""

    steps_per_epoch: int
    turns: EpochPairs
    whole_run_ray_epoch_s: float
    whole_run_torchrun_epoch_s: float
    whole_run_ratios: list[float]

    def rows(self, steps: StepSize, workers: int) -> list[list[Any]]:
        turns, ratios = self.turns, self.whole_run_ratios
        quartiles = " ({:.2f}-{:.2f})".format(*statistics.quantiles(ratios, n=4)[::2]) if len(ratios) > 1 else ""
        return [
            [f"DDP epoch time ratio, {workers} workers, {steps.label}, {self.steps_per_epoch} steps per epoch: "
             f"the two runs taking turns epoch by epoch, median of {len(turns.pairs)} epoch pairs in "
             f"{len(turns.rounds)} rounds", "Ray Train", f"torchrun ({turns.torchrun_epoch_s:.2f} s per epoch)",
             turns.ratio, "≤ 1.05"],
            ["the same, median of each round", "", "", " / ".join(f"{m:.2f}" for m in turns.round_ratios), ""],
            ["Ray Train's extra time per step (ms): median of the pairs' differences / steps per epoch",
             f"{turns.extra_per_step_ms(self.steps_per_epoch):+.2f}", "", "", ""],
            [f"the same {steps.name}, whole runs one after the other: epoch time (s), medians over {len(ratios)} "
             "alternating rounds; ratio: median of the rounds' ratios", f"{self.whole_run_ray_epoch_s:.3f} (Ray Train)",
             f"{self.whole_run_torchrun_epoch_s:.3f} (torchrun)", statistics.median(ratios), ""],
            ["whole runs: ratio of each round (quartiles of the rounds)", "", "",
             " / ".join(f"{r:.2f}" for r in ratios) + quartiles, ""],
        ]


def turn_taking_epoch_pairs(config_named: Callable[[str], Any], mlflow_uri: str, tmp: Path, workers: int,
                            rounds: int) -> EpochPairs:
    """Epoch times of a Ray Train run and a torchrun run taking turns, epoch by epoch.

    Each round is a fresh Ray Train run and a fresh torchrun run, alive at the same time.
    """
    from mlray.train.runner import run_training

    measured = []
    for round_index in range(rounds):
        config = config_named(f"turns-{round_index}")
        turns = EpochTurns(workers, config.training.num_epochs)
        torchrun = start_torchrun(config, workers, tmp, turns.pass_for("torchrun"))
        try:
            summary = run_training(config, callbacks=[TurnTaking(turns.pass_for("ray"))])
        finally:
            turns.close()  # if Ray failed, this lets torchrun run on to its end
            torchrun_times = torchrun_epoch_times(torchrun, tmp)
        if summary["status"] != "completed" or turns.error:
            raise RuntimeError(f"turn-taking round {round_index}: {summary.get('error') or turns.error}")
        ray_times = epoch_times(mlflow_uri, summary["mlflow_run_id"])
        measured.append(list(zip(ray_times[1:], torchrun_times[1:], strict=True)))
    return EpochPairs(measured)


# -- checkpoint upload ---------------------------------------------------------------------------
def checkpoint_throughput(storage_uri: str, megabytes: int, repeats: int) -> tuple[float, float, float]:
    """MB/s of a whole checkpoint (serialise + sha256 + upload), of its upload alone (what Ray Train
    runs for gs://), and of a raw gcsfs upload of the same files (``fs.put`` of the folder).

    The two uploads alternate which goes first, and the first round (connection warm-up) is not counted.
    """
    import torch

    from mlray.storage import Storage
    from mlray.train.checkpoint import copy_checkpoint_files, write_checkpoint

    storage = Storage(storage_uri)
    state = {"epoch": 1, "model": {"w": torch.randn(megabytes * 2**20 // 4)}}
    whole, upload, raw = [], [], []
    for attempt in range(repeats + 1):
        with tempfile.TemporaryDirectory() as local:
            started = time.perf_counter()
            write_checkpoint(Path(local), state, rank=0)
            written = time.perf_counter() - started
            sides = {
                "mlray": lambda: copy_checkpoint_files(Path(local), storage.fs, storage.path("ckpt", str(attempt))),
                "raw": lambda: storage.fs.put(local, storage.path("raw", str(attempt)), recursive=True),
            }
            seconds = {}
            for name in alternating(sides, attempt):
                began = time.perf_counter()
                sides[name]()
                seconds[name] = time.perf_counter() - began
            total_bytes = sum(path.stat().st_size for path in Path(local).iterdir())
        if attempt:
            whole.append(written + seconds["mlray"])
            upload.append(seconds["mlray"])
            raw.append(seconds["raw"])
    mb = total_bytes / 2**20
    return mb / statistics.median(whole), mb / statistics.median(upload), mb / statistics.median(raw)


# -- recovery ------------------------------------------------------------------------------------
def registered_checkpoints(config) -> str:
    """The Ray Train controller's checkpoint snapshot of the run ('' before it exists)."""
    from ray.train.v2._internal.constants import CHECKPOINT_MANAGER_SNAPSHOT_FILENAME

    from mlray.storage import Storage

    run = Storage(config.storage.uri).child(config.run_name)
    return run.read_text(CHECKPOINT_MANAGER_SNAPSHOT_FILENAME) if run.exists(CHECKPOINT_MANAGER_SNAPSHOT_FILENAME) else ""


def kill_to_resume(config, dashboard_url: str) -> float:
    """Seconds from SIGKILL of a worker to the restarted workers resuming from the checkpoint."""
    from mlflow.tracking import MlflowClient
    from ray.util.state import list_actors

    from mlray.train.runner import run_training

    killed_at: list[float] = []

    def killer() -> None:
        workers: list[Any] = []
        while len(workers) != config.training.num_workers:  # looked up first: the state API is slow
            workers = list_actors(address=dashboard_url, detail=True,
                                  filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])
        while "epoch_00001" not in registered_checkpoints(config):  # Ray's controller has registered it
            time.sleep(0.05)  # poll interval
        os.kill(max(w.pid for w in workers), signal.SIGKILL)
        killed_at.append(time.time())

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    summary = run_training(config)
    starts = MlflowClient(config.mlflow.tracking_uri).get_metric_history(summary["mlflow_run_id"], "start_epoch")
    resumed = max(m.timestamp for m in starts) / 1000
    return resumed - killed_at[0]


def sigterm_to_checkpoint(config, tmp: Path, gcs_address: str) -> tuple[float, float]:
    """Seconds from SIGTERM to the job until its checkpoint is durable in storage, and until it exited."""
    import yaml

    from mlray.storage import Storage
    from mlray.train.checkpoint import META_FILE, epoch_of

    config_path = tmp / "spot.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    env = {**os.environ, "RAY_ADDRESS": gcs_address, "RAY_AUTH_MODE": "token"}
    job = subprocess.Popen([sys.executable, "-m", "jobs.train", "--config", str(config_path)], cwd=PROJECT_ROOT,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = threading.Event()

    def drain() -> None:  # keep reading, or a full pipe would stall the job
        assert job.stdout is not None
        for line in job.stdout:
            if "epoch 1/" in line:
                started.set()

    threading.Thread(target=drain, daemon=True).start()
    if not started.wait(300):
        job.kill()
        raise RuntimeError("the spot job never reached epoch 1")
    storage = Storage(config.storage.uri).child(config.run_name)
    signalled = time.time()
    job.send_signal(signal.SIGTERM)

    def durable() -> bool:
        return any(epoch_of(n) is not None and storage.exists(f"{n}/{META_FILE}") for n in storage.list())

    while not durable():
        time.sleep(0.02)  # poll interval
    checkpointed = time.time() - signalled
    job.wait(timeout=120)
    return checkpointed, time.time() - signalled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, help="alternating Ray Train / torchrun rounds (default 8, --quick 2)")
    parser.add_argument("--turn-rounds", type=int, help="turn-taking rounds per step size (default 4, --quick 1)")
    parser.add_argument("--torchrun-worker", nargs="+", metavar="CONFIG RESULT [TURN_PASS]")
    args = parser.parse_args(argv)
    if args.torchrun_worker:
        torchrun_worker(*args.torchrun_worker)
        return 0

    import ray

    from mlray.cluster import init_ray
    from mlray.config import PreprocessJobConfig
    from mlray.storage.emulator import GcsEmulator, free_port
    from mlray.usecases.preprocess import TRAINING_FILE, run_preprocessing
    from mlray.train.runner import run_training

    epochs = 4 if args.quick else 8
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    run_preprocessing(PreprocessJobConfig(output=str(tmp / "data"), driver_trips={"num_trips": 20_000}))
    data_path = tmp / "data" / TRAINING_FILE
    mlflow_uri = f"sqlite:///{tmp}/mlflow.db"
    emulator = GcsEmulator().start()
    emulator.export_env()
    emulator.create_bucket(BUCKET)
    try:
        dashboard_port = free_port()
        init_ray(num_cpus=max(4, args.workers + 2), include_dashboard=True, dashboard_port=dashboard_port)
        gcs_address = ray.get_runtime_context().gcs_address

        turn_rounds = args.turn_rounds or (1 if args.quick else 4)
        whole_rounds = args.rounds or (2 if args.quick else 8)
        ddp = {}
        for steps in (SMALL_STEPS, LARGE_STEPS):
            # a run name per size, or one size's runs would resume from the other's checkpoints
            def sized_config(name: str, epochs: int = epochs, steps: StepSize = steps):
                return bench_config(data_path, str(tmp / "storage"), mlflow_uri,
                                    f"{steps.name.replace(' ', '-')}-{name}", args.workers, epochs, steps)

            ddp[steps] = DdpComparison(
                steps_per_epoch(sized_config("steps")),
                turn_taking_epoch_pairs(lambda name: sized_config(name, 2 * epochs), mlflow_uri, tmp, args.workers,
                                        turn_rounds),
                *ddp_epoch_times(sized_config, mlflow_uri, tmp, args.workers, whole_rounds))

        megabytes = 16 if args.quick else 64
        whole_mbps, upload_mbps, raw_mbps = checkpoint_throughput(f"gs://{BUCKET}/throughput", megabytes,
                                                                  3 if args.quick else 7)

        recovery = bench_config(data_path, str(tmp / "storage"), mlflow_uri, "kill", args.workers, 6,
                                checkpointing={"frequency": 1, "keep_best": 1})
        kill_s = kill_to_resume(recovery, f"http://127.0.0.1:{dashboard_port}")
        spot = bench_config(data_path, f"gs://{BUCKET}/spot", mlflow_uri, "spot", args.workers, 50)
        sigterm_s, sigterm_exit_s = sigterm_to_checkpoint(spot, tmp, gcs_address)
    finally:
        ray.shutdown()
        emulator.stop()

    rows = [row for steps, comparison in ddp.items() for row in comparison.rows(steps, args.workers)]
    rows += [
        [f"checkpoint upload to GCS emulator, {megabytes} MB (MB/s)", f"{upload_mbps:.0f} (Ray upload fn)",
         f"{raw_mbps:.0f} (raw gcsfs put of the folder)", upload_mbps / raw_mbps, "≥ 0.9"],
        [f"whole checkpoint: torch.save + sha256 + upload, {megabytes} MB (MB/s)", f"{whole_mbps:.0f}",
         f"{raw_mbps:.0f} (raw gcsfs)", whole_mbps / raw_mbps, ""],
        ["worker SIGKILL → training resumed (s)", f"{kill_s:.1f}", "", "", "≤ 20 s"],
        ["job SIGTERM → durable checkpoint on gs:// (s)", f"{sigterm_s:.1f}", f"exit after {sigterm_exit_s:.1f}", "",
         "≤ 5 s"],
    ]
    write_result("train", "Training: Ray Train vs baselines",
                 markdown_table(["measure", "mlray", "baseline", "ratio", "goal"], rows),
                 notes=f"The default use case's data (20,000 trips) and model at two sizes: {SMALL_STEPS.label} "
                       f"and {LARGE_STEPS.label}; recovery uses small steps. Ray workers and torchrun "
                       "ranks run the same loop (mlray.train.loop) with OMP_NUM_THREADS=1, and the first epoch is not "
                       f"counted. Taking turns: each round is a Ray Train run and a torchrun run of {2 * epochs} "
                       "epochs, alive at the same time, running one epoch each in turn (the side that goes first "
                       "alternates), so each pair of epochs is about a second apart. Whole runs: "
                       f"{epochs} epochs, one run after the other, the order alternating by round.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
