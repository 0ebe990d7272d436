"""Token authentication on the ``make cluster-up`` cluster: clients without the token are refused."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from mlray.cluster.local import ray_executable


@pytest.mark.security
def test_jobs_api_refuses_clients_without_the_token(local_cluster, tmp_path, security_probe):
    marker = tmp_path / "ran"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}  # a client that never set it
    submitted = subprocess.run(
        [ray_executable(), "job", "submit", "--address", local_cluster.ports.dashboard_url, "--no-wait",
         "--", "touch", str(marker)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert submitted.returncode != 0
    assert "Authentication" in submitted.stdout + submitted.stderr, submitted.stderr[-2000:]

    request = urllib.request.Request(
        f"{local_cluster.ports.dashboard_url}/api/jobs/",
        data=json.dumps({"entrypoint": f"touch {marker}"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code in (401, 403)
    assert not marker.exists()  # neither way ran anything
    security_probe(
        "cluster", "ray job submit without RAY_AUTH_MODE=token", "refused (AuthenticationError), nothing runs",
        (submitted.stdout + submitted.stderr).strip().splitlines()[-1][:200],
    )  # fmt: skip
    security_probe(
        "cluster", "POST /api/jobs/ on the dashboard without the token", "401/403, nothing runs",
        f"{refused.value.code} {refused.value.read()[:120]!r}",
    )  # fmt: skip
