"""``python -m mlray.kuberay render --out clusters/`` and ``python -m mlray.kuberay validate clusters/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlray.config.kuberay import KubeRayConfig
from mlray.config.loader import ConfigError, load_config
from mlray.kuberay import crds
from mlray.kuberay.render import (
    KUBERAY_CONFIG,
    InvalidRenderConfig,
    RenderInputs,
    load_documents,
    render,
    write,
)

DOCKERFILE = Path("image/Dockerfile")


def run_render(args: argparse.Namespace) -> int:
    inputs = RenderInputs.from_project(args.project, args.serve_config)
    written = write(render(inputs), args.out)
    for path in written:
        print(f"wrote {path}")
    if inputs.serve_config_text is None:
        print("serve_apps/config.yaml not found: rayservice.yaml not rendered", file=sys.stderr)
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from mlray.kuberay import dockerfile

    try:
        from mlray.kuberay.schemas import schema_set
        from mlray.kuberay.validate import grace_lookup, validate_documents
    except ModuleNotFoundError as exc:  # the schema validators are an extra: pods never validate
        print(f"error: validate needs {exc.name}: pip install 'mlray[validate]'", file=sys.stderr)
        return 2

    config = load_config(KubeRayConfig, args.project / KUBERAY_CONFIG, environ={})
    crd_dirs = [Path(d) for d in args.crds] if args.crds else crds.directories()
    missing = [str(d) for d in crd_dirs if not d.is_dir()]
    if missing:
        print(f"error: CRD directories not found: {', '.join(missing)} (use --crds)", file=sys.stderr)
        return 2
    files = sorted([*args.directory.glob("*.yaml"), *args.directory.glob("monitoring/*.yaml")])
    documents = [(str(path), document) for path, document in load_documents(files)]
    problems = [
        str(p)
        for p in validate_documents(
            documents,
            schema_set(config.kubernetes_version, crd_dirs),
            grace_lookup(args.project / "configs"),
            config.spot.notice_seconds,
        )
    ]
    image = args.directory / DOCKERFILE
    if image.is_file():
        problems += [f"{image}: {p}" for p in dockerfile.check(image, args.project, config.ray_version)]
    for problem in problems:
        print(problem)
    print(f"{len(documents)} manifests in {len(files)} files: {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlray.kuberay")
    parser.add_argument(
        "--project", type=Path, default=Path("."), help="project root (configs/, serve_apps/)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    render_cmd = commands.add_parser("render", help="write the manifests")
    render_cmd.add_argument("--out", type=Path, required=True)
    render_cmd.add_argument("--serve-config", type=Path, default=None, help="default: serve_apps/config.yaml")
    validate_cmd = commands.add_parser("validate", help="schema and rule checks; exit 1 on problems")
    validate_cmd.add_argument("directory", type=Path)
    validate_cmd.add_argument(
        "--crds", action="append", help="CRD directory (repeatable); default: those shipped in mlray/kuberay/crds/"
    )
    args = parser.parse_args(argv)
    try:
        return run_render(args) if args.command == "render" else run_validate(args)
    except (ConfigError, InvalidRenderConfig) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
