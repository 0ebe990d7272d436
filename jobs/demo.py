"""The main job: the whole platform on one machine (``make demo``)."""

from __future__ import annotations

from typing import Any

from mlray.config.demo import DemoConfig
from mlray.entrypoint import run_registered


def main(config: DemoConfig) -> dict[str, Any]:
    from mlray.demo.run import run_demo

    return run_demo(config)


if __name__ == "__main__":
    run_registered("demo")
