"""The local services a demo run starts, and their guaranteed cleanup.

``LocalServices`` starts a GCS emulator, an ``mlflow server`` (SQLite store in
``mlflow_dir``, artifacts in the bucket or beside the store) and a fresh local
Ray cluster (with dashboard) in a temp dir of its own, and stops Serve, Ray,
MLflow and the emulator on success, on failure, on Ctrl-C and on SIGTERM, so
the demo can be rerun with no manual cleanup.
"""

from __future__ import annotations

import os
import signal
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path

from mlray.cluster.mlflow_server import MlflowServer
from mlray.cluster.runtime import worker_env_vars
from mlray.process_env import apply, process_env
from mlray.storage.emulator import GcsEmulator, free_port

DEMO_JOB = "demo"


@dataclass
class LocalServices:
    bucket: str
    num_cpus: int | None = None
    use_gcs_emulator: bool = True
    mlflow_dir: Path | None = None  # None: no MLflow server
    emulator: GcsEmulator | None = None
    mlflow: MlflowServer | None = None
    ray_temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="mlray-demo-ray-"))
    dashboard_port: int = field(default_factory=free_port)

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def __enter__(self) -> LocalServices:
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        import ray

        apply(process_env(DEMO_JOB))  # before Ray starts: its workers inherit it
        if self.use_gcs_emulator:
            self.emulator = GcsEmulator().start()
            self.emulator.export_env()
            self.emulator.create_bucket(self.bucket)
        if self.mlflow_dir is not None:
            in_bucket = f"gs://{self.bucket}/mlflow-artifacts"
            artifacts = in_bucket if self.emulator else str(self.mlflow_dir / "mlflow-artifacts")
            self.mlflow = MlflowServer(self.mlflow_dir / "mlflow.db", artifacts_destination=artifacts).start()
        ray.init(
            address="local",  # never join a cluster left running by someone else
            num_cpus=self.num_cpus,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=self.dashboard_port,
            runtime_env={"env_vars": worker_env_vars()},
            _temp_dir=self.ray_temp_dir,
            log_to_driver=False,
        )

    def close(self) -> None:
        import ray

        if ray.is_initialized():
            try:
                from ray import serve

                serve.shutdown()
            finally:
                ray.shutdown()
        if self.mlflow is not None:
            self.mlflow.stop()
        if self.emulator is not None:
            self.emulator.stop()
            os.environ.pop("STORAGE_EMULATOR_HOST", None)

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)


def _raise_keyboard_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
