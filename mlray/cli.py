"""``mlray``: one command in front of the entrypoints that already exist.

    mlray train --config configs/training.yaml --set training.num_epochs=3   # python -m jobs.train ...
    mlray cluster up                       # python -m mlray.cluster up
    mlray k8s validate clusters/           # python -m mlray.kuberay validate clusters/

A table maps each subcommand to the entrypoint it stands for; the arguments after
the subcommand go to that entrypoint untouched, so parsing, config loading, exit
statuses and the JSON summary line are exactly those of ``python -m jobs.X``.
A job runs its module as ``__main__`` (what ``python -m`` does), because each job
module's ``__main__`` block is where its name, config model and main function meet.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlray.kuberay.workloads import JOBS

PROG = "mlray"


@dataclass(frozen=True)
class Subcommand:
    summary: str
    run: Callable[[list[str]], int]


def run_module_as_main(module: str, argv: Sequence[str]) -> int:
    """``python -m <module> <argv>`` in this process; a job ends by raising SystemExit with its status."""
    saved_argv = sys.argv
    sys.argv = [f"python -m {module}", *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved_argv
    return 0


def _job(module: str) -> Callable[[list[str]], int]:
    return lambda argv: run_module_as_main(module, argv)


def _cluster(argv: list[str]) -> int:
    from mlray.cluster.__main__ import main

    return main(argv)


def _k8s(argv: list[str]) -> int:
    from mlray.kuberay.__main__ import main

    return main(argv)


def subcommands() -> dict[str, Subcommand]:
    """Subcommand -> its entrypoint: the batch jobs of ``JOBS`` (what KubeRay runs), the demo, two tools."""
    job_args = "--config PATH [--set k=v ...]"
    table = {job.command: Subcommand(f"{job_args}: python -m {job.module}", _job(job.module)) for job in JOBS}
    table["demo"] = Subcommand(f"{job_args}: python -m jobs.demo (all of it, locally)", _job("jobs.demo"))
    table["cluster"] = Subcommand("up|down|status: python -m mlray.cluster (local Ray + MLflow)", _cluster)
    table["k8s"] = Subcommand("render|validate: python -m mlray.kuberay (KubeRay manifests)", _k8s)
    return table


def usage(table: dict[str, Subcommand]) -> str:
    width = max(len(name) for name in table)
    lines = [f"usage: {PROG} <command> [arguments of that command]", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in table.items()]
    lines += ["", f"`{PROG} <command> --help` shows a command's arguments, e.g. {PROG} train --help"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    table = subcommands()
    if not args or args[0] in {"-h", "--help"}:
        print(usage(table), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command = table.get(args[0])
    if command is None:
        print(f"{PROG}: unknown command {args[0]!r}\n{usage(table)}", file=sys.stderr)
        return 2
    return command.run(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
