"""Markdown tables for benchmark results, with the machine they ran on."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory_gib = float("nan")
    return f"{os.cpu_count()} CPUs ({cpu}), {memory_gib:.0f} GiB RAM, Python {platform.python_version()}"


def format_cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def alternating(names: Iterable[str], round_index: int) -> list[str]:
    """``names`` in order on even rounds, reversed on odd ones: no side always goes first."""
    return sorted(names, reverse=round_index % 2 == 1)


def write_result(name: str, title: str, table: str, notes: str = "", save: bool = True) -> str:
    """Print and (unless ``save`` is false) save ``bench/results/<name>.md``; returns the text."""
    text = f"### {title}\n\nMachine: {machine_description()}\n\n{table}\n"
    if notes:
        text += f"\n{notes}\n"
    if save:
        RESULTS_DIR.mkdir(exist_ok=True)
        (RESULTS_DIR / f"{name}.md").write_text(text)
    print(text)
    return text
