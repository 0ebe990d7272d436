"""Progress: a redrawn bar on a terminal, periodic plain lines in logs."""

from __future__ import annotations

import io

from mlray.metrics.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_redrawn_bar_and_a_final_line():
    screen = Terminal()
    with Progress("solve ft10", total=20, unit="s", stream=screen) as progress:
        progress.update(5, "incumbent 950")
        progress.update(10, "incumbent 930")
    text = screen.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1
    assert "[" + "#" * 15 + " " * 15 + "] 10/20s (50%)" in text and "incumbent 930" in text


def test_logs_get_plain_lines_at_most_once_per_interval():
    log = io.StringIO()
    progress = Progress("materialize", total=3, stream=log, interval_s=3600)
    for done in (1, 2, 3):
        progress.update(done, f"view {done}")
    progress.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue() and "#" not in log.getvalue()
    assert lines[0].startswith("materialize: 1/3 (33%)") and lines[0].endswith("view 1")
    assert lines[1].startswith("materialize: 3/3 (100%)") and lines[1].endswith("view 3")
