"""A real Prometheus server (Debian's ``prometheus`` package) for a test: scrapes the given targets,
evaluates the given rule groups, answers the HTTP API on a free loopback port."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from mlray.storage.emulator import free_port


class Prometheus:
    def __init__(self, binary: Path, folder: Path, targets: list[str], rule_groups: list[dict[str, Any]],
                 interval: str = "1s"):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(folder / "rules.yaml")],
            "scrape_configs": [{"job_name": "ray", "static_configs": [{"targets": targets}]}],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (folder / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [str(binary), f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self._wait_ready(60)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.folder / "prometheus.log").read_text()
                raise RuntimeError(f"prometheus exited: {log[-2000:]}")
            try:
                if self.client.get("/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready within {timeout_s} s")

    def _get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(f"/api/v1/{path}", params=params).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def series(self, metric: str, start: float, end: float) -> list[dict[str, str]]:
        """Label sets of every series of ``metric`` that had samples between start and end."""
        return self._get("series", **{"match[]": metric, "start": start, "end": end})

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self._get("query_range", query=expr, start=start, end=end, step=step)["result"]

    def alerts(self, name: str, state: str = "firing") -> list[dict[str, Any]]:
        found = self._get("alerts")["alerts"]
        return [a for a in found if a["labels"]["alertname"] == name and a["state"] == state]

    def targets_up(self) -> bool:
        active = self._get("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


METRIC = re.compile(r"\bray_mlray_[a-z_]+")
GROUPING = re.compile(r"\b(?:by|on|without)\s*\(([^)]*)\)")
SELECTOR_LABEL = re.compile(r"[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def metrics_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """The mlray series an expression reads and the label names it groups, joins or selects by."""
    labels = {name.strip() for group in GROUPING.findall(expr) for name in group.split(",") if name.strip()}
    labels |= set(SELECTOR_LABEL.findall(expr))
    return set(METRIC.findall(expr)), labels
