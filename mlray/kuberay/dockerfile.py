"""Static checks of ``clusters/image/Dockerfile``: no Docker engine is needed to catch a bad image.

Checked: the base is ``rayproject/ray`` pinned by a tag carrying the project's
Ray and Python versions *and* a sha256 digest; the final user is not root;
the entrypoint is ``python -m jobs``; the working directory is the one the
manifests use; every ``COPY`` source exists in the build context; dependencies
are installed with ``pip install --require-hashes`` (any other ``pip install``
must be ``--no-index``), from hash files that match requirements.lock.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from mlray.kuberay.image_hashes import IMAGE_DIR, LOCK, VARIANTS, stale_pins
from mlray.kuberay.pods import APP_DIR

BASE_IMAGE = "rayproject/ray"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ROOT_USERS = {"root", "0", "root:root", "0:0"}


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        """``["a", "b"]`` arguments, or None for shell form."""
        try:
            parsed = json.loads(self.value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, value = full.partition(" ")
        instructions.append(Instruction(start, keyword.upper(), value.strip()))
    return instructions


def substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value)


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    args = {}
    for instruction in instructions:
        if instruction.keyword == "ARG" and "=" in instruction.value:
            name, _, default = instruction.value.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return args


@dataclass(frozen=True)
class Copy:
    """One ``COPY``: build-context sources and the destination (relative to WORKDIR unless absolute)."""

    line: int
    sources: list[str]
    destination: str


def copies(instructions: list[Instruction]) -> list[Copy]:
    """The ``COPY`` instructions in order, flags (``--chown=``) left out."""
    found = []
    for instruction in instructions:
        if instruction.keyword == "COPY":
            parts = [p for p in shlex.split(instruction.value) if not p.startswith("--")]
            found.append(Copy(instruction.line, parts[:-1], parts[-1]))
    return found


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    """What the ``ENV`` instructions (``KEY=VALUE`` form) put in every container's environment."""
    env = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.value):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def pip_install_problems(instructions: list[Instruction], args: dict[str, str]) -> list[str]:
    """Every ``pip install`` either checks hashes or downloads nothing."""
    problems, hashed = [], False
    for instruction in instructions:
        if instruction.keyword != "RUN":
            continue
        for command in substitute(instruction.value, args).split("&&"):
            words = command.split()
            if not {"pip", "install"} <= set(words):
                continue
            if "--require-hashes" in words:
                hashed = True
            elif "--no-index" not in words:
                problems.append(
                    f"line {instruction.line}: `pip install` without --require-hashes or --no-index "
                    f"installs unverified downloads: {command.strip()!r}"
                )
    if not hashed:
        problems.append("no `pip install --require-hashes`: dependencies would be installed unverified")
    return problems


def hash_file_problems(context: Path) -> list[str]:
    lock_text = (context / LOCK).read_text()
    problems = []
    for variant in VARIANTS.values():
        relative = IMAGE_DIR / variant.file_name
        if not (context / relative).is_file():
            problems.append(f"{relative} is missing (python -m mlray.kuberay.image_hashes)")
            continue
        stale = stale_pins((context / relative).read_text(), lock_text, variant.allow_unlocked)
        problems += [f"{relative}: {p}" for p in stale]
    return problems


def check(dockerfile: Path, context: Path, ray_version: str, python_tag: str = "py311") -> list[str]:
    """Problems, each naming the line: an empty list means the Dockerfile passes."""
    instructions = parse(dockerfile.read_text())
    args = build_args(instructions)
    problems: list[str] = []
    by_keyword: dict[str, list[Instruction]] = {}
    for instruction in instructions:
        by_keyword.setdefault(instruction.keyword, []).append(instruction)

    froms = by_keyword.get("FROM", [])
    if not froms:
        return [f"{dockerfile}: no FROM instruction"]
    base = froms[-1]
    image = substitute(base.value.split()[0], args)
    match = re.match(rf"^{re.escape(BASE_IMAGE)}:(?P<tag>[^@]+)@(?P<digest>.+)$", image)
    if match is None:
        problems.append(f"line {base.line}: base must be {BASE_IMAGE}:<tag>@sha256:<digest>, got {image!r}")
    else:
        if not match["tag"].startswith(f"{ray_version}-{python_tag}"):
            problems.append(
                f"line {base.line}: base tag {match['tag']!r} is not Ray {ray_version} on {python_tag}"
            )
        if not DIGEST.match(match["digest"]):
            problems.append(
                f"line {base.line}: base digest {match['digest']!r} is not sha256:<64 hex digits>"
            )

    users = by_keyword.get("USER", [])
    if not users:
        problems.append("no USER instruction: the image would run as its base's user")
    elif substitute(users[-1].value, args) in ROOT_USERS:
        problems.append(f"line {users[-1].line}: final USER is root")

    entrypoints = by_keyword.get("ENTRYPOINT", [])
    entrypoint = entrypoints[-1].exec_form() if entrypoints else None
    if entrypoint is None or entrypoint[-2:] != ["-m", "jobs"]:
        problems.append(f"ENTRYPOINT must be the exec form [..., '-m', 'jobs'], got {entrypoint!r}")

    workdirs = by_keyword.get("WORKDIR", [])
    if not workdirs or substitute(workdirs[-1].value, args) != APP_DIR:
        problems.append(f"WORKDIR must be {APP_DIR} (the manifests' workingDir)")

    problems += pip_install_problems(instructions, args)
    problems += hash_file_problems(context)

    for copy in copies(instructions):
        for source in copy.sources:
            if not (context / source).exists():
                problems.append(f"line {copy.line}: COPY source {source!r} is not in the build context")
    return problems
