"""Optional Airflow DAG: hourly materialization through the same function as ``jobs/materialize.py``.

For teams that schedule with Airflow instead of (or besides) ``ray job submit``:
put this file in the DAGs folder (or import it from one) of an Airflow whose
workers have mlray installed. Each run materializes up to the end of its data
interval (Feast's ``materialize_incremental``: from where the previous run
stopped). A late or backfill run whose interval is already covered does
nothing: the online store holds only the latest values.

Checked with Apache Airflow 3.3.2 (``airflow dags list``, no import errors,
``airflow dags test mlray_materialize_features`` ran the task to success).

Needs Airflow (2.x or 3.x) to import; nothing else in mlray imports it.
``MLRAY_FEATURES_CONFIG`` names the features config (default
``configs/features.yaml``, relative to the worker's working directory).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow.operators.python import PythonOperator

FEATURES_CONFIG = os.environ.get("MLRAY_FEATURES_CONFIG", "configs/features.yaml")


def materialize_interval(data_interval_end: datetime, **_: Any) -> dict[str, Any]:
    from mlray.config.features import FeaturesConfig
    from mlray.config.loader import load_config
    from mlray.features.materialize import materialize

    config = load_config(FeaturesConfig, FEATURES_CONFIG, [f"materialize.end={data_interval_end.isoformat()}"])
    return materialize(config)


with DAG(
    dag_id="mlray_materialize_features",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,  # materialize_incremental continues from the previous run's end
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["mlray", "features"],
) as dag:
    PythonOperator(task_id="materialize", python_callable=materialize_interval)
