"""``python -m bench [name ...]``: run benchmarks, one Markdown table each.

Each ``bench/<name>.py`` is run as its own process (so one benchmark's Ray
cluster or threads can't skew the next) and writes ``bench/results/<name>.md``.
With ``--docs`` (``make bench``), the generated section of docs/benchmarks.md
is then rebuilt from every table in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"__init__", "__main__", "report", "gpu_check"}
BENCHMARKS_DOC = BENCH_DIR.parent / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- bench:start -->", "<!-- bench:end -->"


def available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in NOT_BENCHMARKS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"default: all of {available()}")
    parser.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    parser.add_argument("--docs", action="store_true", help="then put the tables in bench/results/ into "
                        "docs/benchmarks.md")
    args = parser.parse_args(argv)
    failed = []
    for name in args.names or available():
        print(f"== bench/{name}.py", flush=True)
        command = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if args.quick else [])]
        if subprocess.run(command, cwd=BENCH_DIR.parent).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {failed}")
    if args.docs:
        update_doc()
        print(f"updated the generated section of {BENCHMARKS_DOC}")
    return 1 if failed else 0


def results_section() -> str:
    """Every table in bench/results/, each with the command that reproduces it."""
    tables = []
    for result in sorted((BENCH_DIR / "results").glob("*.md")):
        reproduce = f"Reproduce: `python -m bench {result.stem}` (all of them: `make bench`)."
        tables.append(f"{result.read_text().strip()}\n\n{reproduce}")
    return "\n" + "\n\n".join(tables) + "\n"


def doc_section(text: str) -> str:
    """What stands between the bench markers of docs/benchmarks.md."""
    return text[text.index(DOC_START) + len(DOC_START) : text.index(DOC_END)]


def update_doc(doc: Path = BENCHMARKS_DOC) -> None:
    text = doc.read_text()
    doc.write_text(text.replace(DOC_START + doc_section(text), DOC_START + results_section(), 1))

if __name__ == "__main__":
    raise SystemExit(main())
