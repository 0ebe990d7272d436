"""A throwaway multi-node Ray cluster on this machine serving the app, for failure tests and bench/chaos.py.

``ServingCluster`` runs ``ray start --head`` and ``ray start --address`` (one raylet per node, each on its own
loopback address: 127.0.0.1, 127.0.0.2, ...) as subprocesses, with the serving environment of
``mlray.serve.cluster_env`` (HAProxy mode or Serve's Python proxy), and deploys the shipped Serve config with
``serve run``. Every process it starts carries its private folder in its environment (``MLRAY_CLUSTER_MARKER``),
and each node's processes also carry the node's name (``MLRAY_NODE_NAME``): that is how a replica's process and
its node are found, and how ``stop`` stops exactly this cluster and nothing else on the machine (never
``ray stop``).

Proxies run on the head only (``proxy_location: HeadOnly``): two proxies of one cluster would both bind Serve's HTTP
port on the one machine. Requests enter at the head and reach replicas on any node, as on a real cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.support.haproxy import local_haproxy_env, pids_where, stop_haproxy, terminate
from mlray.cluster.local import client_env, ensure_auth_token, ray_executable
from mlray.cluster.runtime import worker_env_vars
from mlray.serve.cluster_env import SERVING_ENV
from mlray.storage.emulator import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIG = PROJECT_ROOT / "serve_apps" / "config.yaml"
MARKER_VAR = "MLRAY_CLUSTER_MARKER"
NODE_VAR = "MLRAY_NODE_NAME"
HEAD = "head"


def processes_marked(marker: str, extra: str | None = None) -> list[int]:
    """Processes with ``marker`` in their command line or environment (and ``extra`` in their environment).

    Ray's workers rename their command line (``ray::ServeReplica:...``) but inherit their raylet's environment,
    so they are found too; processes of other users and clusters are not.
    """
    needle, also = marker.encode(), (extra or "").encode()

    def ours(entry: Path) -> bool:
        if int(entry.name) == os.getpid():
            return False
        environ = (entry / "environ").read_bytes()
        return (needle in environ or needle in (entry / "cmdline").read_bytes()) and also in environ

    return pids_where(ours)


def stop_marked(marker: str, timeout_s: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, the processes ``processes_marked(marker)``; the PIDs still there.

    A throwaway cluster: GCS, raylet and Serve's actors take well over 10 s to drain on SIGTERM (measured), so
    they get ``timeout_s`` and then SIGKILL.
    """
    return terminate(lambda: processes_marked(marker), timeout_s)


@dataclass
class ServingCluster:
    """``haproxy``: the shipped setup (``SERVING_ENV``); else Serve's Python proxy. ``env``: added to every node's."""

    haproxy: bool = True
    env: dict[str, str] = field(default_factory=dict)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlray-sc-")))  # short: socket paths
    api_key: str = "chaos-test-key"
    http_port: int = field(default_factory=free_port)
    gcs_port: int = field(default_factory=free_port)
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> node IP

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def haproxy_dir(self) -> Path:
        return self.base / "hap"

    def node_env(self, name: str) -> dict[str, str]:
        env = client_env()
        env.update(worker_env_vars())
        if self.haproxy:
            env.update(SERVING_ENV)
            env.update(local_haproxy_env(self.haproxy_dir, free_port(), free_port(), free_port()))
        env.update(self.env)
        env.update({MARKER_VAR: str(self.base), NODE_VAR: name, "MLRAY_SERVE_API_KEYS": self.api_key})
        return env

    def _ray_start(self, name: str, args: list[str], num_cpus: int) -> None:
        ip = f"127.0.0.{len(self.nodes) + 1}"
        command = [
            ray_executable(), "start", f"--node-ip-address={ip}", f"--num-cpus={num_cpus}",
            f"--metrics-export-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
            "--disable-usage-stats", *args,
        ]
        started = subprocess.run(command, env=self.node_env(name), capture_output=True, text=True, timeout=180)
        if started.returncode != 0:
            raise RuntimeError(f"ray start ({name}) failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
        self.nodes[name] = ip

    def start(self, head_cpus: int = 2) -> ServingCluster:
        ensure_auth_token()  # token auth: `ray start` refuses to run without one
        self._ray_start(HEAD, [
            "--head", f"--port={self.gcs_port}", "--include-dashboard=false",
            f"--ray-client-server-port={free_port()}", f"--temp-dir={self.base / 'ray'}",
        ], head_cpus)
        return self

    def add_node(self, name: str, num_cpus: int = 2) -> None:
        self._ray_start(name, [f"--address={self.gcs_address}"], num_cpus)

    def deploy(self, inference: dict[str, Any]) -> None:
        """The shipped serve_apps/config.yaml with this inference config, on loopback, proxies on the head."""
        folder = self.base / "config"
        folder.mkdir(exist_ok=True)
        (folder / "inference.yaml").write_text(yaml.safe_dump(inference))
        serve_config = yaml.safe_load(SERVE_CONFIG.read_text())
        serve_config["applications"][0]["args"]["config"] = str(folder / "inference.yaml")
        serve_config["http_options"].update({"host": "127.0.0.1", "port": self.http_port})
        serve_config["proxy_location"] = "HeadOnly"
        (folder / "serve.yaml").write_text(yaml.safe_dump(serve_config))
        serve = str(Path(sys.executable).with_name("serve"))
        deployed = subprocess.run(
            [serve, "run", "--non-blocking", "--address", self.gcs_address, str(folder / "serve.yaml")],
            cwd=PROJECT_ROOT, env=self.node_env(HEAD), capture_output=True, text=True, timeout=300,
        )
        if deployed.returncode != 0:
            raise RuntimeError(f"serve run failed:\n{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}")

    def replica_pids(self, deployment: str = "PredictionService", node: str | None = None) -> list[int]:
        """PIDs of the app's replicas of ``deployment`` (on ``node`` only, if given)."""
        title = f"ray::ServeReplica:mlray:{deployment}".encode()
        marked = set(processes_marked(str(self.base), f"{NODE_VAR}={node}\0" if node else None))
        return [pid for pid in marked if _cmdline(pid).startswith(title)]

    def replicas_by_node(self, deployment: str = "PredictionService") -> dict[str, list[int]]:
        return {name: self.replica_pids(deployment, name) for name in self.nodes}

    def node_ids(self) -> dict[str, str]:
        """Node name -> Ray node id (hex), read by a short driver on the cluster."""
        script = "import json, ray; ray.init(); print(json.dumps({n['NodeManagerAddress']: n['NodeID'] " \
                 "for n in ray.nodes() if n['Alive']}))"
        env = {**self.node_env(HEAD), "RAY_ADDRESS": self.gcs_address}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"listing nodes failed: {done.stderr[-2000:]}")
        by_ip = json.loads(done.stdout.strip().splitlines()[-1])
        return {name: by_ip[ip] for name, ip in self.nodes.items() if ip in by_ip}

    def drain(self, node: str, deadline_s: int = 30) -> None:
        """Ray's node drain (what a preemption notice triggers on KubeRay), for ``node``."""
        node_id = self.node_ids()[node]
        drained = subprocess.run(
            [ray_executable(), "drain-node", f"--address={self.gcs_address}", f"--node-id={node_id}",
             "--reason=DRAIN_NODE_REASON_PREEMPTION", "--reason-message=chaos test: spot preemption",
             f"--deadline-remaining-seconds={deadline_s}"],
            env=self.node_env(HEAD), capture_output=True, text=True, timeout=120,
        )
        if drained.returncode != 0:
            raise RuntimeError(f"ray drain-node failed: {drained.stdout[-2000:]} {drained.stderr[-2000:]}")

    def stop(self) -> list[int]:
        """Stop every process of this cluster; the PIDs left (should be none)."""
        left = stop_marked(str(self.base)) + stop_haproxy(self.haproxy_dir)
        shutil.rmtree(self.base, ignore_errors=True)
        return left

    def __enter__(self) -> ServingCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


@dataclass(frozen=True)
class FaultResult:
    """What steady load saw around one fault: every request after the fault's onset, and the failed ones."""

    mode: str  # "haproxy" or "python proxy"
    fault: str  # "replica SIGKILL" or "node drain"
    requests: int
    failed: int
    failures: list[str]
    replicas_after: dict[str, int]


def fault_under_load(
    cluster: ServingCluster, fault: str, node: str, body: dict[str, Any], settle_s: float = 5.0,
    observe_s: float = 40.0, concurrency: int = 8,
) -> FaultResult:
    """Steady load through the head's HTTP port; then SIGKILL a replica on ``node`` (``fault="kill"``) or
    drain ``node`` (``fault="drain"``); then ``observe_s`` more of load. Counts every failed request after onset."""
    import signal
    import time

    from bench.support.load import SteadyLoad

    headers = {"Authorization": f"Bearer {cluster.api_key}"}
    with SteadyLoad(cluster.url, body, concurrency, headers) as load:
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:  # load before the fault, as long as asked
            time.sleep(0.2)
        onset = time.monotonic()
        if fault == "kill":
            os.kill(cluster.replica_pids(node=node)[0], signal.SIGKILL)
        elif fault == "drain":
            cluster.drain(node)
        else:
            raise ValueError(f"fault: expected 'kill' or 'drain', got {fault!r}")
        deadline = onset + observe_s
        while time.monotonic() < deadline:
            time.sleep(0.2)
    summary = load.summary(since=onset)
    return FaultResult(
        "haproxy" if cluster.haproxy else "python proxy",
        {"kill": "replica SIGKILL", "drain": "node drain"}[fault],
        summary["requests"], summary["failed"], summary["failures"],
        {name: len(pids) for name, pids in cluster.replicas_by_node().items()},
    )


def two_node_app(haproxy: bool, timeout_s: float = 180.0) -> ServingCluster:
    """A head and a node ``n2`` (2 CPUs each), the app with two fixed replicas (1 CPU each) of a small MLP,
    answering through the head's HTTP port with one replica on each node. The caller stops it."""
    import time

    import httpx

    from mlray.models import ModelSpec, build_mlp, save_bundle
    from mlray.storage import Storage
    from mlray.usecases.driver_trips import FEATURE_COLUMNS

    cluster = ServingCluster(haproxy=haproxy)
    try:
        cluster.start(head_cpus=2)
        cluster.add_node("n2", num_cpus=2)
        storage = Storage(str(cluster.base / "models"))
        kwargs = {"input_dim": len(FEATURE_COLUMNS), "output_dim": 2, "hidden": [16]}
        save_bundle(build_mlp(**kwargs), ModelSpec("mlray.models.mlp:build_mlp", kwargs, list(FEATURE_COLUMNS)),
                    storage, "v1")
        cluster.deploy({
            "service": {"min_workers": 2, "max_workers": 2, "num_cpus": 1, "health_check_period_s": 1,
                        "access_log": False},
            "models": {"versions": {"v1": "v1"}, "stable": "v1"},
            "storage": {"uri": str(cluster.base / "models")},
            "prediction_log": {"sink": None},
            "auth": {"api_keys_file": None, "admin_keys_file": None},  # the key comes from the environment
        })
        headers = {"Authorization": f"Bearer {cluster.api_key}"}
        body = {"instances": [[0.5, 0.5, 10.0, 5.0]]}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                answered = httpx.post(f"{cluster.url}/v1/predict", json=body, headers=headers, timeout=10)
                spread = all(cluster.replicas_by_node().values())
                if answered.status_code == 200 and spread:
                    return cluster
            time.sleep(0.5)  # poll interval while Serve starts the replicas
        raise TimeoutError(f"the app did not answer with a replica on each node within {timeout_s} s: "
                           f"{cluster.replicas_by_node()}")
    except BaseException:
        cluster.stop()
        raise
