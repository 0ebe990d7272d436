"""Feature materialization as a Ray task: ``python -m jobs.materialize --config configs/features.yaml``.

Also via ``ray job submit --working-dir . -- python -m jobs.materialize --config configs/features.yaml``.
"""

from __future__ import annotations

from typing import Any

from mlray.config.features import FeaturesConfig
from mlray.entrypoint import run_registered


def main(config: FeaturesConfig) -> dict[str, Any]:
    from mlray.features.materialize import materialize_on_ray

    try:
        return materialize_on_ray(config)
    except (OSError, ValueError) as exc:  # missing or mismatched sources, store config, unknown views
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    run_registered("materialize")
