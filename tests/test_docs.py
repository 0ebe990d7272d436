"""The docs stay true: generated parts match their sources, every relative link resolves, the README is short.

``make docs`` regenerates the configuration reference (from the config models) and the benchmark tables
(from ``bench/results/``); ``make bench`` reruns the benchmarks first.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS_DOC, doc_section, results_section
from mlray.config.reference import render, replace_block

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOCS = PROJECT_ROOT / "docs"
README = PROJECT_ROOT / "README.md"
README_MAX_LINES = 250  # issue 17: a newcomer reads it in ten minutes
FENCED_BLOCK = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]*`")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Link targets outside code, without external URLs and in-page anchors."""
    prose = INLINE_CODE.sub("", FENCED_BLOCK.sub("", text))
    targets = [match.group(1) for match in MARKDOWN_LINK.finditer(prose)]
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|#)", t)]


def test_configuration_reference_matches_the_models():
    text = (DOCS / "configuration.md").read_text()
    assert replace_block(text, render()) == text, (
        "docs/configuration.md's reference is stale: run `make docs` "
        "(python -m mlray.config.reference --write docs/configuration.md)"
    )


def test_benchmark_tables_are_the_latest_results():
    assert doc_section(BENCHMARKS_DOC.read_text()) == results_section(), (
        "docs/benchmarks.md's tables differ from bench/results/: run `make docs` (`make bench` reruns them)"
    )


@pytest.mark.parametrize("document", markdown_files(), ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_every_relative_link_resolves_to_a_file(document):
    broken = [
        target for target in relative_links(document.read_text())
        if not (document.parent / target.split("#", 1)[0]).exists()
    ]  # fmt: skip
    assert broken == [], f"{document.relative_to(PROJECT_ROOT)} links to missing files: {broken}"


def test_the_link_finder_sees_links_and_skips_code_and_urls():
    text = "[a](docs/a.md), [b](b.md#part), [web](https://x.org), [top](#top)\n`[c](c.md)`\n```\n[d](d)\n```"
    assert relative_links(text) == ["docs/a.md", "b.md#part"]


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md: {lines} lines (limit {README_MAX_LINES}): move it to docs/"


def test_the_docs_index_lists_every_doc():
    index = (DOCS / "index.md").read_text()
    listed = set(relative_links(index))
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "index.md" and p.name not in listed]
    assert missing == [], f"docs/index.md does not link {missing}"
    assert "docs/index.md" in relative_links(README.read_text())
