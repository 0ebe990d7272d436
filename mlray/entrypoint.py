"""What every ``python -m jobs.X`` shares: arguments, config loading, the summary line.

A job module is its ``main`` and two lines of glue; the jobs table (``mlray.config.jobs``) names its
config model and that ``main``::

    def main(config: TrainJobConfig) -> dict: ...
    if __name__ == "__main__":
        run_registered("train")

An invalid config exits with status 2 and one readable message before any
work starts; the last line a job prints on stdout is one JSON object. A job
that stopped for a spot notice (status ``preempted``, its checkpoint saved)
exits 143, as a process ended by SIGTERM does, so that a RayJob's
``backoffLimit`` or any retrying scheduler runs it again and it resumes.
The job's process env (``mlray.process_env``) is applied once its config is loaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from mlray.config.base import ConfigModel
from mlray.config.loader import ConfigError, load_config
from mlray.process_env import apply, process_env

EXIT_CONFIG_ERROR = 2
EXIT_JOB_FAILED = 1
EXIT_PREEMPTED = 143  # 128 + SIGTERM
FAILED_STATUSES = {"failed", "error"}

ConfigT = TypeVar("ConfigT", bound=ConfigModel)


def parse_args(job_name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m jobs.{job_name}")
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="dotted.key=value",
        help="override one field (repeatable), e.g. --set training.num_epochs=3",
    )
    return parser.parse_args(argv)


def load_job_config(job_name: str, config_cls: type[ConfigT], argv: Sequence[str] | None = None) -> ConfigT:
    """Parse arguments and load the config, or exit 2 with a readable message."""
    args = parse_args(job_name, argv)
    try:
        return load_config(config_cls, args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_ERROR) from None


def print_summary(summary: dict[str, Any]) -> None:
    """The last stdout line of every job: one JSON object."""
    print(json.dumps(summary, default=str, sort_keys=True), flush=True)


def run_job(
    job_name: str,
    config_cls: type[ConfigT],
    main: Callable[[ConfigT], dict[str, Any]],
    argv: Sequence[str] | None = None,
) -> NoReturn:
    config = load_job_config(job_name, config_cls, argv)
    # Before anything imports Ray, gcsfs or Feast, which read some of these when imported.
    apply(process_env(job_name, config))
    level = getattr(getattr(config, "monitoring", None), "log_level", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    try:
        summary = main(config)
    except KeyboardInterrupt:
        summary = {"status": "interrupted"}
    summary = {"job": job_name, **summary, "elapsed_s": round(time.monotonic() - started, 2)}
    disconnect_ray()
    print_summary(summary)
    raise SystemExit(exit_status(str(summary.get("status", "ok"))))


def run_registered(name: str, argv: Sequence[str] | None = None) -> NoReturn:
    """Run the job called ``name`` in the jobs table (``mlray.config.jobs``) with these arguments."""
    from mlray.config.jobs import job_named
    from mlray.imports import import_object

    job = job_named(name)
    run_job(job.module_name, job.config, import_object(job.run), argv)


def disconnect_ray() -> None:
    """End this process's Ray session, if it has one, so that no cluster log line follows the summary.

    The driver prints the cluster's forwarded logs (worker output, raylet warnings) from a
    background thread, so one can arrive after anything the job prints while connected.
    """
    ray = sys.modules.get("ray")  # a job that never imported Ray has no session to end
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def exit_status(status: str) -> int:
    if status == "preempted":
        return EXIT_PREEMPTED
    return EXIT_JOB_FAILED if status in FAILED_STATUSES or status == "interrupted" else 0
