"""``python -m mlray.kuberay.image_hashes``: the image's hash-pinned requirements, from requirements.lock.

pip resolves the project against requirements.lock exactly as the image build does, without
installing anything (``pip install --dry-run --report``), and its JSON report carries the sha256 of
every file it chose. Those become ``clusters/image/requirements.hashes.txt`` (CPU image: torch from
the PyTorch CPU index) and ``requirements-gpu.hashes.txt`` (GPU image: torch and its CUDA wheels from
PyPI), which the Dockerfile installs with ``pip install --require-hashes``::

    python -m mlray.kuberay.image_hashes --variant cpu     # or: make image-hashes
    python -m mlray.kuberay.image_hashes --variant gpu

A package whose resolved version is not the one in requirements.lock fails the run.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK = Path("requirements.lock")
IMAGE_DIR = Path("clusters/image")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# `pip freeze` (make lock) leaves these out of requirements.lock; the resolver's version is kept.
FREEZE_OMITS = {"pip", "setuptools", "wheel", "distribute"}


@dataclass(frozen=True)
class Variant:
    file_name: str
    global_args: tuple[str, ...]  # pip's own options
    install_args: tuple[str, ...]  # where torch comes from
    # requirements.lock is frozen from a CPU environment: PyPI's torch adds its CUDA wheels
    # (nvidia-*, triton, pinned exactly by torch itself), which the lock cannot name.
    allow_unlocked: bool = False


VARIANTS = {
    "cpu": Variant("requirements.hashes.txt", (), ("--extra-index-url", TORCH_CPU_INDEX)),
    # PyPI only: --isolated ignores local pip config (wheel folders, extra indexes).
    "gpu": Variant("requirements-gpu.hashes.txt", ("--isolated",), (), allow_unlocked=True),
}


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def public_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: requirements.lock drops the local label (``make lock``)."""
    return version.split("+", 1)[0]


def read_lock(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file -> {canonical name: version}."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, version = line.partition("==")
            pins[canonical_name(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def read_hashed(text: str) -> dict[str, tuple[str, list[str]]]:
    """A ``--hash`` requirements file -> {canonical name: (version, [sha256 hex, ...])}."""
    entries = {}
    for block in re.split(r"\n(?=\S)", text.replace("\\\n", " ")):
        block = block.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)(.*)$", block, re.DOTALL)
        if match:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", match[3])
            entries[canonical_name(match[1])] = (match[2], hashes)
    return entries


def differs_from_lock(name: str, version: str, lock: dict[str, str], allow_unlocked: bool) -> bool:
    if name not in lock:
        return not (allow_unlocked or name in FREEZE_OMITS)
    return lock[name] != public_version(version)


def stale_pins(hashed_text: str, lock_text: str, allow_unlocked: bool = False) -> list[str]:
    """Entries of a hashes file without a sha256 or at another version than requirements.lock."""
    lock = read_lock(lock_text)
    problems = []
    for name, (version, hashes) in sorted(read_hashed(hashed_text).items()):
        if not hashes:
            problems.append(f"{name}=={version} has no --hash=sha256")
        if differs_from_lock(name, version, lock, allow_unlocked):
            problems.append(f"{name}=={version}, but requirements.lock has {lock.get(name)}")
    return problems


def hashed_requirements(
    report: dict[str, Any], lock: dict[str, str], header: list[str], allow_unlocked: bool = False
) -> str:
    """The report's resolved distributions as ``name==version --hash=sha256:...`` lines, sorted.

    The project itself (a local directory, no archive hash) is left out: the image installs it
    separately with ``--no-deps``. Raises ValueError when a version differs from the lock.
    """
    lines, problems = [], []
    for item in sorted(report["install"], key=lambda i: canonical_name(i["metadata"]["name"])):
        name, version = canonical_name(item["metadata"]["name"]), item["metadata"]["version"]
        archive = item["download_info"].get("archive_info")
        if archive is None:
            continue  # the project's own directory
        sha256 = archive.get("hashes", {}).get("sha256") or archive["hash"].removeprefix("sha256=")
        if differs_from_lock(name, version, lock, allow_unlocked):
            problems.append(f"{name}: resolved {version}, requirements.lock has {lock.get(name)}")
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{sha256}")
    if problems:
        raise ValueError("resolution differs from requirements.lock:\n" + "\n".join(problems))
    return "\n".join([*(f"# {line}" for line in header), *lines]) + "\n"


def pip_report(project: Path, global_args: list[str], install_args: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "pip", *global_args, "install", "--dry-run", "--ignore-installed"]
    command += ["--quiet", "--report", "-", "-c", str(LOCK), *install_args, "."]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlray.kuberay.image_hashes")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="cpu")
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--from-report", type=Path, help="a saved `pip install --dry-run --report` JSON")
    args, extra_pip_args = parser.parse_known_args(argv)
    variant = VARIANTS[args.variant]
    if args.from_report is not None:
        report = json.loads(args.from_report.read_text())
    else:
        report = pip_report(args.project, [*variant.global_args], [*variant.install_args, *extra_pip_args])
    header = [
        f"Generated by `python -m mlray.kuberay.image_hashes --variant {args.variant}` from requirements.lock "
        "(pip's resolution of the project, with the sha256 pip chose); do not edit.",
        "The image installs it with `pip install --require-hashes --no-deps -r` (clusters/image/Dockerfile).",
    ]
    lock = read_lock((args.project / LOCK).read_text())
    try:
        text = hashed_requirements(report, lock, header, variant.allow_unlocked)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = args.project / IMAGE_DIR / variant.file_name
    out.write_text(text)
    print(f"wrote {out}: {text.count('--hash=')} hashed requirements")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
