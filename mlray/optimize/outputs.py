"""What a solve leaves behind: the solution JSON and the kind's pictures in ``<output.dir>/<run_name>``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlray.config.optimize import OptimizeJobConfig
from mlray.optimize.registry import kind_of
from mlray.optimize.result import OptimizationResult
from mlray.storage import Storage


@contextmanager
def outputs_written(config: OptimizeJobConfig, problem: Any, result: OptimizationResult) -> Iterator[None]:
    """Solution JSON and plots into ``<output.dir>/<run_name>`` (output.dir under storage.uri when
    relative). Remote ones are drawn into a local folder kept for the block, then uploaded; after it,
    ``result.plots`` names the uploaded files."""
    target = Storage(config.storage.location(config.output.dir)).child(config.run_name)
    if not target.is_remote:
        render_outputs(config, problem, result, Path(target.root))
        yield
        return
    with tempfile.TemporaryDirectory(prefix="mlray-optimize-") as folder:
        render_outputs(config, problem, result, Path(folder))
        for file in sorted(Path(folder).iterdir()):
            target.upload_file(str(file), file.name)
        yield
    result.plots = {name: target.url(Path(local).name) for name, local in result.plots.items()}


def render_outputs(config: OptimizeJobConfig, problem: Any, result: OptimizationResult, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if result.solution is not None:
        (folder / "solution.json").write_text(
            json.dumps({**result.summary(), "solution": result.solution.to_payload()}, default=str)
        )
    if not config.output.plots:
        return
    from mlray.optimize import plots

    plot = kind_of(problem).plot
    if result.solution is not None and plot is not None:
        pictures = plot(problem, result.solution, folder)
        result.plots.update({name: str(path) for name, path in pictures.items()})
    result.plots["history"] = str(
        plots.draw_history(result.history, result.bound_history, folder / "history.png", result.best_known)
    )
