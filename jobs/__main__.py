"""The container image's entrypoint: ``python -m jobs <command> [args...]``.

    python -m jobs train --config configs/training.yaml --set training.num_epochs=3
    python -m jobs serve                  # serve run serve_apps/config.yaml

Each batch command runs ``python -m jobs.<module>`` with the remaining
arguments, exactly as the RayJob entrypoints do; ``serve`` runs the Serve
applications of ``serve_apps/config.yaml`` (on KubeRay, the RayService deploys
that same file).
"""

from __future__ import annotations

import runpy
import sys

from mlray.kuberay.workloads import JOBS

SERVE_CONFIG = "serve_apps/config.yaml"
COMMANDS = {workload.command: workload.module for workload in JOBS}


def usage() -> str:
    names = " | ".join([*COMMANDS, "serve"])
    return f"usage: python -m jobs {{{names}}} [--config PATH] [--set key=value ...]"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        from ray.serve.scripts import cli

        return cli.main(["run", *(rest or [SERVE_CONFIG])], prog_name="serve", standalone_mode=True)
    module = COMMANDS.get(command)
    if module is None:
        print(f"error: unknown command {command!r}\n{usage()}", file=sys.stderr)
        return 2
    sys.argv = [f"python -m {module}", *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
