"""Following a run from the driver: rank 0's callback reports to ``RunControl``, the driver draws it."""

from __future__ import annotations

import io

from mlray.train.callbacks import LoopStart
from mlray.train.control import EpochProgressReporter, RunControl, follow_epochs
from tests.waiting import wait_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_driver_draws_the_epochs_rank_zero_reports(ray_cluster):
    control = RunControl.remote()
    report = EpochProgressReporter(control, "val_loss")
    screen = Terminal()
    with follow_epochs(control, "train demo", total_epochs=4, poll_s=0.05, stream=screen):
        report.on_start(LoopStart(rank=0, world_size=2, start_epoch=3, skipped_checkpoints=0))
        wait_for(lambda: "2/4 epochs (50%)" in screen.getvalue(), 30, "the resumed position on the bar")
        report.after_epoch({"epoch": 3, "train_loss": 0.5, "val_loss": 0.25, "status": "completed"})
        wait_for(lambda: "3/4 epochs (75%)" in screen.getvalue(), 30, "epoch 3 on the bar")
    text = screen.getvalue()
    assert "resumed after epoch 2" in text
    assert text.endswith("\n") and "train_loss 0.5 val_loss 0.25" in text.splitlines()[-1]


def test_a_fresh_run_reports_nothing_before_its_first_epoch(ray_cluster):
    import ray

    control = RunControl.remote()
    report = EpochProgressReporter(control, "train_loss")
    report.on_start(LoopStart(rank=0, world_size=2, start_epoch=1, skipped_checkpoints=0))
    # Calls without awaits run in the order sent: a start report, had there been one, is in by now.
    assert ray.get(control.progress.remote()) == (0, "")
    report.after_epoch({"epoch": 1, "train_loss": 0.75})  # fire and forget: the driver sees it soon after
    wait_for(lambda: ray.get(control.progress.remote()) == (1, "train_loss 0.75"), 30, "epoch 1 reported")
