"""The loop's callbacks: which run on which rank, in what order, and the step log they write."""

from __future__ import annotations

import os
import pickle

from mlray.train.callbacks import Callbacks, LoopStart, TrainingCallback
from mlray.train.step_log import StepLog, read_step_log, step_log_pid, step_log_starts


class Calls(TrainingCallback):
    def __init__(self, name: str, seen: list[str]):
        self.name, self.seen = name, seen

    def on_start(self, start: LoopStart) -> None:
        self.seen.append(f"{self.name} start {start.rank}")

    def after_epoch(self, metrics: dict) -> None:
        self.seen.append(f"{self.name} epoch {metrics['epoch']}")


class RankZeroCalls(Calls):
    rank_zero_only = True


def test_rank_zero_only_callbacks_run_on_rank_zero_alone_and_the_rest_everywhere_in_order():
    for rank, expected in ((0, ["a start 0", "b start 0", "a epoch 1", "b epoch 1"]), (1, ["a start 1", "a epoch 1"])):
        seen: list[str] = []
        callbacks = Callbacks([Calls("a", seen), RankZeroCalls("b", seen)], rank)
        callbacks.on_start(LoopStart(rank=rank, world_size=2, start_epoch=1, skipped_checkpoints=0))
        callbacks.after_step(1, 0.5)  # not overridden: nothing
        callbacks.after_epoch({"epoch": 1})
        assert seen == expected


def test_the_step_log_pickles_before_its_start_and_records_each_start_and_step(tmp_path):
    path = tmp_path / "steps"
    step_log = pickle.loads(pickle.dumps(StepLog(str(path))))  # as Ray ships it to each worker
    assert StepLog.rank_zero_only
    for start_step in (1, 3):  # a start, then a restart that resumed after step 2
        step_log.on_start(LoopStart(rank=0, world_size=2, start_epoch=1, skipped_checkpoints=0))
        for step in range(start_step, start_step + 2):
            step_log.after_step(step, step / 10)
        step_log.on_end({})
    assert [[(step, loss) for step, loss, _ in part] for part in read_step_log(path)] == [[(1, 0.1), (2, 0.2)],
                                                                                          [(3, 0.3), (4, 0.4)]]
    assert step_log_starts(path) == [(os.getpid(), 2, 1), (os.getpid(), 2, 3)]
    assert step_log_pid(path) == os.getpid()
