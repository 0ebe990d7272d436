"""The container image's entrypoint: ``python -m jobs <command> [args...]``.

    python -m jobs train --config configs/train.yaml --set training.num_epochs=3
    python -m jobs serve                  # serve run serve_apps/config.yaml

Each job of the jobs table (``mlray.config.jobs``) runs with the remaining
arguments, as ``python -m jobs.<module>`` would (the RayJob entrypoints are
these commands); ``serve`` runs the Serve applications of
``serve_apps/config.yaml`` (on KubeRay, the RayService deploys that same file).
"""

from __future__ import annotations

import sys

from mlray.config.jobs import JOBS
from mlray.entrypoint import run_registered

SERVE_CONFIG = "serve_apps/config.yaml"


def usage() -> str:
    names = " | ".join([*JOBS, "serve"])
    return f"usage: python -m jobs {{{names}}} [--config PATH] [--set key=value ...]"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        from ray.serve.scripts import cli

        return cli.main(["run", *(rest or [SERVE_CONFIG])], prog_name="serve", standalone_mode=True)
    if command not in JOBS:
        print(f"error: unknown command {command!r}\n{usage()}", file=sys.stderr)
        return 2
    run_registered(command, rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
