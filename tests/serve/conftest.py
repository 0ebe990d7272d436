"""Real Ray Serve on the session cluster, driven over HTTP.

Serve is started once per session on a free loopback port (its HTTP options
are cluster-wide); each test deploys its app as ``mlray`` at ``/`` and deletes
it afterwards. Models are tiny MLP bundles built in-process: ``v1`` and ``v2``
predict differently; ``broken`` takes 5 inputs while its spec promises 4, so
every call fails like a bad export would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from mlray.models import ModelSpec, build_mlp, save_bundle
from mlray.storage import Storage
from mlray.storage.emulator import free_port
from mlray.usecases.driver_trips import FEATURE_COLUMNS

APP_NAME = "mlray"
HIDDEN = [16]


@dataclass(frozen=True)
class Bundles:
    root: Path

    def uri(self, version: str) -> str:
        return str(self.root / version)


def make_bundle(storage: Storage, name: str, seed: int, input_dim: int = len(FEATURE_COLUMNS)) -> None:
    torch.manual_seed(seed)
    kwargs = {
        "input_dim": input_dim,
        "output_dim": 2,
        "hidden": HIDDEN,
        "feature_mean": [0.5, 0.5, 10.0, 5.0][:input_dim] + [0.0] * (input_dim - 4),
        "feature_std": [0.2, 0.2, 5.0, 3.0][:input_dim] + [1.0] * (input_dim - 4),
    }
    model = build_mlp(**kwargs)
    spec = ModelSpec("mlray.models.mlp:build_mlp", kwargs, list(FEATURE_COLUMNS))
    save_bundle(model, spec, storage, name)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    root = tmp_path_factory.mktemp("bundles")
    storage = Storage(str(root))
    make_bundle(storage, "v1", seed=1)
    make_bundle(storage, "v2", seed=2)
    make_bundle(storage, "broken", seed=3, input_dim=len(FEATURE_COLUMNS) + 1)
    return Bundles(root)


def expected(bundles: Bundles, version: str, rows: list[list[float]]) -> list[dict[str, Any]]:
    """The model called in-process, independently of the serving code."""
    from mlray.models import load_bundle

    model, _ = load_bundle(bundles.uri(version))
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.tensor(rows, dtype=torch.float32)), dim=-1)
    return [{"label": int(p.argmax()), "probabilities": p.tolist()} for p in probabilities]


def assert_same_predictions(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [p["label"] for p in got] == [p["label"] for p in want]
    for g, w in zip(got, want, strict=True):
        assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-6)


def sample_rows(n: int, seed: int = 0) -> list[list[float]]:
    generator = torch.Generator().manual_seed(seed)
    base = torch.tensor([0.5, 0.5, 10.0, 5.0])
    scale = torch.tensor([0.3, 0.3, 8.0, 5.0])
    return (base + scale * torch.randn(n, 4, generator=generator)).tolist()


@pytest.fixture(scope="session")
def serve_url(ray_cluster) -> Iterator[str]:
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


def base_config(bundles: Bundles, **sections: dict[str, Any]) -> dict[str, Any]:
    """An InferenceConfig dict for tests: one fixed replica, fast rollout windows."""
    config: dict[str, Any] = {
        "service": {"min_workers": 1, "max_workers": 1, "health_check_period_s": 1, "access_log": False},
        "models": {"versions": {"v1": "v1", "v2": "v2", "broken": "broken"}, "stable": "v1"},
        "rollout": {"report_interval_s": 0.2, "window_s": 1.0, "min_requests": 10},
        "storage": {"uri": str(bundles.root)},
        "prediction_log": {"sink": None},
        "auth": {"api_keys_file": None, "admin_keys_file": None},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    return config


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def start_app(
    serve_url: str, bundles: Bundles, headers: dict[str, str] | None = None, route_prefix: str = "/", **sections: Any
) -> httpx.Client:
    """Run the app at ``route_prefix`` with ``base_config`` plus overrides (replacing any running one); a client
    for the server (paths in requests include the prefix)."""
    from ray import serve

    from mlray.config.inference import InferenceConfig
    from mlray.serve.app import build_application

    config = InferenceConfig.model_validate(base_config(bundles, **sections))
    serve.run(build_application(config), name=APP_NAME, route_prefix=route_prefix)
    return httpx.Client(base_url=serve_url, headers=headers or {}, timeout=30)


def stop_app() -> None:
    from ray import serve

    serve.delete(APP_NAME)


@pytest.fixture
def deploy(serve_url: str, bundles: Bundles) -> Iterator[Callable[..., httpx.Client]]:
    """``deploy(headers=None, **sections)``: the app for this test, deleted afterwards."""
    clients: list[httpx.Client] = []

    def run(headers: dict[str, str] | None = None, **sections: Any) -> httpx.Client:
        clients.append(start_app(serve_url, bundles, headers, **sections))
        return clients[-1]

    yield run
    for client in clients:
        client.close()
    stop_app()
