"""Test support for the manifest rehearsal: the image's app directory and a Ray head that runs in it.

``image_app`` lays out a copy of ``/home/ray/app`` as clusters/image/Dockerfile does (its ``COPY``
instructions, read from the Dockerfile) and installs the project non-editable beside it (a wheel
built from that copy, ``pip install --no-deps --target``), which the head puts first on PYTHONPATH:
the editable checkout of the venv is not what the jobs import.

``RehearsalHead`` is one ``ray start --head`` whose working directory is that app directory, read-only
(a read-only bind mount in a private mount namespace when the sandbox allows one, else ``chmod -R a-w``;
``read_only_by`` says which), with the image's ``ENV`` and the RayService pods' container env.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.support.haproxy import local_haproxy_env, stop_haproxy
from mlray.cluster.local import (
    LocalClusterPorts,
    client_env,
    ensure_auth_token,
    head_command,
    interpreter_first_on_path,
    ray_executable,
    stop_head,
)
from mlray.kuberay.dockerfile import copies, image_env, parse
from mlray.storage.emulator import free_port
from tests.job_submit import retried

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = PROJECT_ROOT / "clusters" / "image" / "Dockerfile"
# What clusters/image/Dockerfile.dockerignore keeps out of the build context.
NOT_IN_IMAGE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
# The process's own settings that a pod does not have: its storage, MLflow and import path come from the
# manifests (and the installed project), never from the test's environment.
NOT_INHERITED_PREFIXES = ("MLRAY_",)
NOT_INHERITED = {"MLFLOW_TRACKING_URI", "PYTHONPATH", "RAY_ADDRESS"}
RO_BIND = 'mount --bind -o ro "$0" "$0" && cd "$0" && exec "$@"'
# The venv holds an editable install of the checkout (a finder on sys.meta_path, from a .pth file), which
# the image has not: Python runs this after the .pth files and removes it, so that a module missing from
# the image's app directory and wheel is missing for the jobs too.
NO_EDITABLE_INSTALL = """import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path_hooks[:] = [h for h in sys.path_hooks if not getattr(h, "__module__", "").startswith("__editable__")]
"""


@dataclass(frozen=True)
class ImageApp:
    app_dir: Path  # the image's WORKDIR (/home/ray/app)
    site_dir: Path  # the project installed non-editable (the image's site-packages copy of it)


def image_app(root: Path) -> ImageApp:
    """``root/app`` laid out as the Dockerfile's COPY instructions lay out the WORKDIR, and the project
    built from it as a wheel and installed into ``root/site-packages``."""
    app, site, wheels = root / "app", root / "site-packages", root / "wheels"
    app.mkdir(parents=True)
    for copy in copies(parse(DOCKERFILE.read_text())):
        destination = app / copy.destination
        for source in copy.sources:
            origin = PROJECT_ROOT / source
            target = destination / origin.name if copy.destination.endswith("/") else destination
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=NOT_IN_IMAGE)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    # The image runs `pip install --no-index --no-deps .` in the WORKDIR; the build goes through a scratch
    # copy here so that its build/ and *.egg-info do not land in the folder the jobs run in.
    scratch = root / "build-context"
    shutil.copytree(app, scratch)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", str(wheels),
                    str(scratch)], check=True, capture_output=True, text=True)  # fmt: skip
    (wheel,) = wheels.glob("mlray-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)  # fmt: skip
    shutil.rmtree(scratch)
    return ImageApp(app, site)


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 (or the link target, or 'dir') of everything under ``folder``."""
    digest = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest[relative] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            digest[relative] = "dir"
        else:
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def bind_mount_works() -> bool:
    """Whether this sandbox lets us put a read-only bind mount in a private mount namespace."""
    with tempfile.TemporaryDirectory() as folder:
        probe = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", RO_BIND, folder,
             "sh", "-c", "! touch probe 2>/dev/null"],
            capture_output=True, text=True,
        )  # fmt: skip
        return probe.returncode == 0


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """A container's literal env entries (``valueFrom`` ones, such as the pod IP, have no local meaning)."""
    return {entry["name"]: str(entry["value"]) for entry in container.get("env", []) if "value" in entry}


@dataclass
class RehearsalHead:
    """A loopback Ray head in ``app.app_dir`` (read-only) with ``env`` added to a pod-like environment."""

    app: ImageApp
    env: dict[str, str]
    num_cpus: int
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlray-rh-")))  # short: sockets
    ports: LocalClusterPorts = field(default_factory=LocalClusterPorts.free)
    read_only_by: str = ""

    @property
    def haproxy_dir(self) -> Path:
        return self.base / "hap"

    def head_env(self) -> dict[str, str]:
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name not in NOT_INHERITED and not name.startswith(NOT_INHERITED_PREFIXES)
        }
        env = interpreter_first_on_path(client_env(inherited))
        env.update(image_env(parse(DOCKERFILE.read_text())))
        env.update(self.env)
        env.update(local_haproxy_env(self.haproxy_dir, free_port(), free_port(), free_port()))
        hide = self.base / "no-editable"
        hide.mkdir(exist_ok=True)
        (hide / "sitecustomize.py").write_text(NO_EDITABLE_INSTALL)
        env["PYTHONPATH"] = os.pathsep.join([str(self.app.site_dir), str(hide)])
        return env

    def up(self) -> None:
        command = head_command(self.ports, self.num_cpus, self.base / "ray")
        if bind_mount_works():
            self.read_only_by = "read-only bind mount (unshare --mount; mount --bind -o ro)"
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", RO_BIND,
                       str(self.app.app_dir), *command]  # fmt: skip
        else:
            self.read_only_by = "chmod -R a-w (no mount namespace here)"
            subprocess.run(["chmod", "-R", "a-w", str(self.app.app_dir)], check=True)
        ensure_auth_token()
        started = subprocess.run(command, cwd=self.app.app_dir, env=self.head_env(), capture_output=True,
                                 text=True, timeout=180)  # fmt: skip
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]

    def down(self) -> list[int]:
        left = stop_head(timeout_s=10.0, temp_dir=self.base / "ray") + stop_haproxy(self.haproxy_dir)
        subprocess.run(["chmod", "-R", "u+w", str(self.app.app_dir)], check=False)
        shutil.rmtree(self.base, ignore_errors=True)
        return left

    def submit(
        self, entrypoint: str, env_vars: Mapping[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """What KubeRay's submitter pod runs: ``ray job submit --runtime-env-json ... -- <entrypoint>``
        (no working_dir: the code is the image's), waiting for the job's end."""
        command = [
            ray_executable(), "job", "submit", "--address", self.ports.dashboard_url,
            "--runtime-env-json", json.dumps({"env_vars": dict(env_vars)}), "--", *shlex.split(entrypoint),
        ]  # fmt: skip
        return retried(  # a just-started head's job agent may not be up yet
            lambda: subprocess.run(command, env=client_env(), capture_output=True, text=True, timeout=timeout)
        )

    def serve_deploy(self, serve_config: Mapping[str, Any], folder: Path) -> subprocess.CompletedProcess[str]:
        path = folder / "serve-config.yaml"
        path.write_text(yaml.safe_dump(dict(serve_config), sort_keys=False))
        serve = str(Path(sys.executable).with_name("serve"))
        return subprocess.run([serve, "deploy", "--address", self.ports.dashboard_url, str(path)],
                              env=client_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
