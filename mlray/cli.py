"""``mlray``: one command in front of the entrypoints that already exist.

    mlray train --config configs/train.yaml --set training.num_epochs=3   # python -m jobs.train ...
    mlray cluster up                       # python -m mlray.cluster up
    mlray k8s validate clusters/           # python -m mlray.kuberay validate clusters/

The jobs come from the jobs table (``mlray.config.jobs``); the arguments after the
subcommand go to the job untouched, so parsing, config loading, exit statuses and
the JSON summary line are exactly those of ``python -m jobs.X``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlray.config.jobs import JOBS
from mlray.entrypoint import run_registered

PROG = "mlray"


@dataclass(frozen=True)
class Subcommand:
    summary: str
    run: Callable[[list[str]], int]


def _job(name: str) -> Callable[[list[str]], int]:
    return lambda argv: run_registered(name, argv)


def _cluster(argv: list[str]) -> int:
    from mlray.cluster.__main__ import main

    return main(argv)


def _k8s(argv: list[str]) -> int:
    from mlray.kuberay.__main__ import main

    return main(argv)


def subcommands() -> dict[str, Subcommand]:
    """Subcommand -> its entrypoint: the jobs of the jobs table, then two tools."""
    job_args = "--config PATH [--set k=v ...]"
    table = {
        name: Subcommand(f"{job_args}: python -m {job.module}" + ("" if job.on_cluster else " (locally)"),
                         _job(name))
        for name, job in JOBS.items()
    }
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
