"""Materialization: the latest feature values from the offline sources into the online store.

``materialize(config)`` is the one function behind ``python -m jobs.materialize``
(a Ray task), the Airflow DAG (``mlray/features/airflow_dag.py``) and the
benchmark. It applies the definitions when they changed, then moves each online
view forward: a view's first run covers ``[materialize.first_start, end]``,
every later one ``(last end, end]`` (Feast's ``materialize_incremental``), so
rows already materialized are not read again. A view already materialized up
to ``end`` or later is left alone: the online store keeps only the latest
values, so a late or backfill run has nothing to add (and Feast would record
a backwards interval in the registry).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as pads
from feast import FeatureStore, FeatureView, FileSource

from mlray.config.features import FeaturesConfig
from mlray.features.store import check_sources, definitions, prepare_store, resolved_sources, state_location
from mlray.metrics.features import MaterializeMetrics
from mlray.metrics.progress import Progress
from mlray.storage import Storage

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _parquet_source(view: FeatureView) -> tuple[pads.Dataset, str] | None:
    """A view's Parquet source and its timestamp column; None for other sources."""
    source = view.batch_source
    if not isinstance(source, FileSource):
        return None
    storage = Storage(source.path)
    dataset = pads.dataset(storage.path(), filesystem=storage.pyarrow_fs, format="parquet")
    return dataset, source.timestamp_field


def source_rows_between(view: FeatureView, start: datetime, end: datetime) -> int | None:
    """Rows of a Parquet source with ``start <= timestamp <= end``; None for other sources."""
    found = _parquet_source(view)
    if found is None:
        return None
    dataset, timestamp = found
    column = pads.field(timestamp)
    return dataset.count_rows(filter=(column >= start) & (column <= end))


def newest_timestamp_until(view: FeatureView, end: datetime) -> datetime | None:
    """The newest event timestamp ``<= end`` of a Parquet source: what materializing up to ``end`` puts
    online."""
    found = _parquet_source(view)
    if found is None:
        return None
    dataset, timestamp = found
    column = dataset.to_table(columns=[timestamp], filter=pads.field(timestamp) <= end)[timestamp]
    newest = pc.max(column).as_py()
    return None if newest is None else as_utc(newest)


def views_to_materialize(store: FeatureStore, config: FeaturesConfig) -> list[FeatureView]:
    online = {view.name: view for view in store.list_feature_views() if view.online}
    if config.materialize.views is None:
        return list(online.values())
    unknown = [name for name in config.materialize.views if name not in online]
    if unknown:
        raise ValueError(f"materialize.views: {unknown} are not online feature views (there are {sorted(online)})")
    return [online[name] for name in config.materialize.views]


def materialize(config: FeaturesConfig) -> dict[str, Any]:
    """Apply if needed, materialize up to ``materialize.end`` (default now); a summary per view."""
    prepared = prepare_store(config)
    store = prepared.store
    end = as_utc(config.materialize.end or datetime.now(timezone.utc))
    first_start = as_utc(config.materialize.first_start or EPOCH)
    windows: dict[str, tuple[datetime, datetime]] = {}
    continuing: set[str] = set()
    up_to_date: dict[str, dict[str, Any]] = {}
    for view in views_to_materialize(store, config):
        if view.materialization_intervals:
            last_end = as_utc(view.most_recent_end_time)
            if last_end >= end:
                up_to_date[view.name] = {"start": last_end.isoformat(), "end": end.isoformat(), "source_rows": 0,
                                         "skipped": f"already materialized up to {last_end.isoformat()}"}
                continue
            continuing.add(view.name)
            windows[view.name] = (last_end, end)
        else:
            windows[view.name] = (first_start, end)
    # One view at a time, so progress can say how far it is (a bar on a terminal, lines in job logs).
    with Progress("materialize", total=len(windows), unit=" views") as progress:
        for done, name in enumerate(windows, start=1):
            if name in continuing:
                store.materialize_incremental(end_date=end, feature_views=[name])
            else:
                store.materialize(start_date=first_start, end_date=end, feature_views=[name])
            progress.update(done, name)
    views: dict[str, dict[str, Any]] = dict(up_to_date)
    observed = MaterializeMetrics(config.monitoring.enable_metrics)
    for name, (start, stop) in windows.items():
        views[name] = {
            "start": start.isoformat(),
            "end": stop.isoformat(),
            "source_rows": source_rows_between(store.get_feature_view(name), start, stop),
        }
        newest = newest_timestamp_until(store.get_feature_view(name), stop)
        lag = None if newest is None else (stop - newest).total_seconds()
        observed.view(name, views[name]["source_rows"], lag)
    log.info("materialized %s", views)
    return {"status": "ok", "applied": prepared.applied, "end": end.isoformat(), "views": views}


def with_absolute_paths(config: FeaturesConfig) -> FeaturesConfig:
    """The same config with every location resolved, for a process with another working directory."""
    repo = config.repo.model_copy(update={"state_dir": state_location(config)})
    return config.model_copy(update={"repo": repo, "sources": resolved_sources(config)})


def materialize_on_ray(config: FeaturesConfig) -> dict[str, Any]:
    """Run ``materialize`` as a Ray task on this driver's node (where local stores and files live)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from mlray.cluster import init_ray

    config = with_absolute_paths(config)
    check_sources(definitions(config))  # a bad source fails here, before a cluster is started or joined
    init_ray(config.ray)
    task = ray.remote(num_cpus=1, max_retries=0)(_materialize_from_json).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
        name="materialize_features",
    )
    try:
        return ray.get(task.remote(config.model_dump_json()))
    except ray.exceptions.RayTaskError as exc:
        raise exc.cause from None  # the task's own error (FeatureSourceError, Feast's), not Ray's wrapper


def _materialize_from_json(config_json: str) -> dict[str, Any]:
    return materialize(FeaturesConfig.model_validate_json(config_json))
