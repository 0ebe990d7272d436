"""Materialization as a Ray task, and jobs/materialize.py through ``ray job submit``."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from mlray.cluster.local import client_env
from mlray.features.materialize import materialize_on_ray
from mlray.features.store import open_store
from tests.features.conftest import PROJECT_ROOT, FeatureSetup
from tests.job_submit import job_summary, submit


def online_conv_rate(setup: FeatureSetup, driver: int) -> float:
    response = open_store(setup.config).get_online_features(
        features=["driver_hourly_stats:conv_rate"], entity_rows=[{"driver_id": driver}]
    )
    return response.to_dict()["conv_rate"][0]


def latest_conv_rate(setup: FeatureSetup, driver: int, end: pd.Timestamp | None = None) -> float:
    stats = setup.data.driver_stats
    rows = stats[(stats.driver_id == driver) & (stats.event_timestamp <= (end or stats.event_timestamp.max()))]
    return float(rows.sort_values("event_timestamp").iloc[-1].conv_rate)


def test_materialization_runs_as_a_ray_task(ray_cluster, fresh_setup):
    report = materialize_on_ray(fresh_setup.config)
    assert report["status"] == "ok"
    assert report["views"]["driver_hourly_stats"]["source_rows"] == len(fresh_setup.data.driver_stats)
    assert online_conv_rate(fresh_setup, 1004) == pytest.approx(latest_conv_rate(fresh_setup, 1004))


@pytest.mark.slow
def test_materialize_job_runs_through_ray_job_submit(ray_cluster, fresh_setup):
    end = "2026-01-01T08:30:00+00:00"
    result = submit(
        ray_cluster.dashboard_url,
        sys.executable, "-m", "jobs.materialize",  # the venv's python: PATH's may be another
        "--config", str(fresh_setup.config_path), "--set", f"materialize.end={end}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = job_summary(result.stdout, "materialize")
    assert summary["status"] == "ok"
    assert summary["views"]["driver_hourly_stats"]["end"] == end
    assert online_conv_rate(fresh_setup, 1002) == pytest.approx(latest_conv_rate(fresh_setup, 1002, pd.Timestamp(end)))


def test_materialize_job_refuses_a_bad_config_before_any_work(tmp_path):
    bad = tmp_path / "features.yaml"
    bad.write_text("materialize: {apply: sometimes}\n")
    result = subprocess.run(
        [sys.executable, "-m", "jobs.materialize", "--config", str(bad)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "materialize.apply" in result.stderr and result.stdout == ""


def test_materialize_job_with_a_missing_source_fails_naming_the_view_before_starting_ray(fresh_setup):
    (fresh_setup.data_dir / "driver_stats.parquet").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "jobs.materialize", "--config", str(fresh_setup.config_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env={**client_env(), "RAY_ADDRESS": ""},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "failed"
    assert "feature view 'driver_hourly_stats': source file" in summary["error"]
    assert "Started a local Ray instance" not in result.stderr
