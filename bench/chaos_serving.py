"""Serving rows of ``python -m bench.chaos``: failed requests through a replica SIGKILL and a node drain, per proxy;
a regressed canary's time to rollback and the requests it cost.

Each fault case runs on its own two-node cluster (``bench.support.serving_cluster.two_node_app``), not the
shared one: the proxy mode is cluster-wide and read when Ray starts. The canary regressions
(``mlray.serve.faults``) run as a Serve app on the shared cluster.
"""

from __future__ import annotations

from typing import Any

from bench.support.serving_cluster import fault_under_load, two_node_app

BODY = {"instances": [[0.5, 0.5, 10.0, 5.0]]}


def failed_requests(ctx: Any) -> list[Any]:
    from bench.chaos import Row

    rows = []
    for mode in ("haproxy", "python proxy"):
        for fault in ("kill", "drain"):
            cluster = two_node_app(haproxy=mode == "haproxy")
            try:
                result = fault_under_load(cluster, fault, node="n2", body=BODY,
                                          observe_s=20.0 if ctx.quick else 40.0)
            finally:
                cluster.stop()
            detail = f"; {result.failures[0]}" if result.failures else ""
            rows.append(Row(f"{result.fault} under load ({mode})", "failed requests",
                            f"{result.failed} of {result.requests}{detail}", "0"))
    return rows


CANARY_SHARE = 0.3
STABLE_DELAY_MS = 200.0  # per model call: a 3x slower canary takes 600 ms
CANARY_LOAD_CONCURRENCY = 16
REGRESSIONS = (("latency x3", "slower-x3"), ("errors 5 %", "errors-5pc"))


def rule_of(reason: str) -> str:
    """Which rule rolled a canary back, from the rollout's reason ("<canary> rolled back: p99 ... > stable's ...")."""
    broken = reason.split(" rolled back: ", 1)[-1]
    kind = "error rate" if broken.startswith("error rate") else "p99"
    scope = "relative to stable" if "stable's" in broken else "absolute"
    return f"{kind} {scope}"


def canary_regressions(ctx: Any) -> list[Any]:
    """A regressed canary at share 0.3 under steady load, with the shipped rollout rules and windows (the
    config's defaults): seconds from the load's start until the rollback, and requests the load client saw fail
    over the whole run (those the canary failed are answered by stable, ``rollout.fallback_to_stable``)."""
    from ray import serve

    from bench.chaos import Row, median_max
    from bench.support.load import load_until_rollout
    from mlray.config.inference import InferenceConfig
    from mlray.serve.app import build_application
    from mlray.serve.faults import regression_sections, save_regressions
    from mlray.storage.emulator import free_port
    from mlray.usecases.driver_trips import FEATURE_COLUMNS

    root = ctx.workdir / "canary-regressions"
    save_regressions(root, STABLE_DELAY_MS, list(FEATURE_COLUMNS), [16])
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    rows = []
    try:
        for label, canary in REGRESSIONS:
            seconds, failed, requests, reasons = [], 0, 0, set()
            for _ in range(1 if ctx.quick else 3):
                config = InferenceConfig.model_validate({
                    **regression_sections(canary, CANARY_SHARE),
                    "service": {"mode": "sync", "min_workers": 1, "max_workers": 1, "access_log": False},
                    "storage": {"uri": str(root)},
                    "prediction_log": {"sink": None},
                    "auth": {"api_keys_file": None, "admin_keys_file": None},
                })
                serve.run(build_application(config), name="canary-regression", route_prefix="/")
                try:
                    state, load, took = load_until_rollout(f"http://127.0.0.1:{port}", BODY, "rolled_back", 180,
                                                           CANARY_LOAD_CONCURRENCY)
                finally:
                    serve.delete("canary-regression")
                summary = load.summary()
                seconds.append(round(took, 1))
                failed += summary["failed"]
                requests += summary["requests"]
                reasons.add(rule_of(state["reason"]))
            rows.append(Row(
                f"canary regression: {label} (share {CANARY_SHARE}, default rollout rules and windows)",
                "seconds from onset to rollback; failed requests overall",
                f"{median_max(seconds)} s (rule: {', '.join(sorted(reasons))}); "
                f"{failed} of {requests} failed ({100 * failed / requests:.2f} %)",
                "<= 60 s; < 0.1 %"))
    finally:
        serve.shutdown()
    return rows
