"""Feature store benchmark: online lookup latency through mlray vs Feast directly; materialization rate.

``python -m bench.features [--quick]`` prints a Markdown table and writes
``bench/results/features.md``. Both sides of every ratio are measured in this
run, against the same SQLite online store, interleaved call by call so that
load from other processes hits both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("FEAST_USAGE", "False")

from bench.report import alternating, markdown_table, write_result  # noqa: E402

LATENCY_GOAL = 1.1


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)


def interleaved_latencies(
    calls: dict[str, Callable[[], Any]], iterations: int, warmup: int = 20
) -> dict[str, list[float]]:
    """Milliseconds per call of each callable, alternating between them every iteration.

    The order flips every iteration so that neither side always runs right after the
    other's allocations (and pays for the garbage collection they trigger).
    """
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for iteration in range(warmup + iterations):
        for name in alternating(calls, iteration):
            call = calls[name]
            started = time.perf_counter()
            call()
            elapsed_ms = (time.perf_counter() - started) * 1000
            if iteration >= warmup:
                timings[name].append(elapsed_ms)
    return timings


def write_data(root: Path, num_drivers: int, hours: int) -> tuple[Path, Any]:
    from mlray.usecases import driver_trips

    data = driver_trips.generate(num_drivers=num_drivers, hours=hours, num_trips=10)
    data_dir = root / "data"
    data_dir.mkdir()
    data.driver_stats.to_parquet(data_dir / "driver_stats.parquet")
    return data_dir, data


def features_config(root: Path, data_dir: Path, name: str) -> Any:
    from mlray.config.features import FeaturesConfig

    repo = Path(__file__).resolve().parents[1] / "configs" / "feature_store"
    return FeaturesConfig.model_validate(
        {"repo": {"path": str(repo), "state_dir": str(root / name)}, "sources": {"location": str(data_dir)}}
    )


def materialization_rows(root: Path, data_dir: Path, rows: int, rounds: int) -> list[list[Any]]:
    """mlray's materialize() (checks, apply-if-changed, bookkeeping) vs Feast's materialize() alone.

    Each round materializes every row into fresh, already-applied stores, one per side,
    alternating which side goes first; the median round time counts.
    """
    from mlray.features.materialize import EPOCH, materialize
    from mlray.features.store import prepare_store

    materialize(features_config(root, data_dir, "state-warmup"))  # imports and first-use costs, untimed
    seconds: dict[str, list[float]] = {"mlray": [], "direct": []}
    for round_index in range(rounds):
        mlray_config = features_config(root, data_dir, f"state-mlray-{round_index}")
        prepare_store(mlray_config)
        direct_store = prepare_store(features_config(root, data_dir, f"state-direct-{round_index}")).store
        sides = {
            "mlray": lambda: materialize(mlray_config),
            "direct": lambda: direct_store.materialize(start_date=EPOCH, end_date=time_now()),
        }
        for name in alternating(sides, round_index):
            started = time.perf_counter()
            sides[name]()
            seconds[name].append(time.perf_counter() - started)
    mlray_s, direct_s = statistics.median(seconds["mlray"]), statistics.median(seconds["direct"])
    return [
        ["materialize, first run (all rows)", "mlray materialize()", "rows/s", rows / mlray_s,
         "FeatureStore.materialize()", rows / direct_s, direct_s / mlray_s, ""]
    ]  # fmt: skip


def time_now() -> Any:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def latency_rows(root: Path, data_dir: Path, num_drivers: int, iterations: int) -> list[list[Any]]:
    from mlray.features.online import OnlineFeatureEnricher
    from mlray.usecases import driver_trips

    config_path = root / "features.yaml"
    config = features_config(root, data_dir, "state-mlray-0")  # materialized above
    config_path.write_text(config.model_dump_json())  # JSON is YAML
    enricher = OnlineFeatureEnricher(features_config=str(config_path), feature_names=driver_trips.FEATURE_COLUMNS)
    store, service = enricher.store, enricher.service
    table = []
    for count in (1, 100):
        instances = [{"driver_id": 1001 + (i * 7) % num_drivers, "trip_distance_km": 3.0 + i % 11} for i in range(count)]
        timings = interleaved_latencies(
            {
                "mlray": lambda: enricher.enrich(instances),
                "direct": lambda: store.get_online_features(features=service, entity_rows=instances).to_dict(),
            },
            iterations,
        )
        for q in (50, 99):
            ours, theirs = percentile(timings["mlray"], q), percentile(timings["direct"], q)
            table.append(
                [f"online lookup, {count} row{'s' if count > 1 else ''}", f"mlray enrich() p{q}", "ms", ours,
                 f"FeatureStore.get_online_features p{q}", theirs, ours / theirs,
                 "yes" if ours / theirs <= LATENCY_GOAL else "no"]
            )  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.features")
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer calls")
    args = parser.parse_args(argv)
    num_drivers, hours, iterations = (200, 24, 200) if args.quick else (2000, 48, 3000)
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        root = Path(tmp)
        data_dir, data = write_data(root, num_drivers, hours)
        rows = materialization_rows(root, data_dir, len(data.driver_stats), rounds=3 if args.quick else 5)
        rows += latency_rows(root, data_dir, num_drivers, iterations)
    columns = ["measure", "mlray", "unit", "value", "baseline", "baseline value", "ratio (mlray/baseline)", f"ratio <= {LATENCY_GOAL}"]
    notes = (
        f"{num_drivers} drivers x {hours} hourly rows = {num_drivers * hours} source rows; latency over {iterations} "
        "interleaved calls per side (order flipped every call) after 20 warm-up calls, materialization median of alternating rounds, SQLite online store, feature service driver_trips_v1 "
        "(stored view + on-demand view). Ratio = mlray value / baseline value: for latency lower is better, for "
        "materialization (rows/s) higher is; mlray's materialize() also checks the sources, compares the "
        "definitions with the registry and counts the window's rows."
    )
    write_result("features", "Feature store: online lookups and materialization", markdown_table(columns, rows), notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
