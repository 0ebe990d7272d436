"""The README's benchmarks section holds the latest tables of bench/results/ (``make bench`` rebuilds it)."""

from bench.__main__ import README, readme_section, results_section


def test_readme_holds_the_latest_benchmark_tables():
    assert readme_section(README.read_text()) == results_section(), (
        "README.md's benchmark tables differ from bench/results/: run "
        "`.venv/bin/python -c 'from bench.__main__ import update_readme; update_readme()'` (or `make bench`)"
    )
