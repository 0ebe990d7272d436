"""GPU check: the default use case's training step on CUDA with AMP, and a GPU checkpoint loaded on CPU.

``python -m bench.gpu_check`` prints one JSON line. Needs PyTorch with CUDA, not
Ray: it drives the same ``mlray.train.loop`` functions the Ray workers run.
Without CUDA it says so and exits 0 with status "skipped".
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

STEPS = 200


def check(device: torch.device) -> dict[str, Any]:
    from mlray.config.train import TrainJobConfig
    from mlray.train.checkpoint import read_checkpoint, write_checkpoint
    from mlray.train.data import TrainingData
    from mlray.train.parts import LoopSettings, build_parts, train_step, training_state
    from mlray.train.prepare import model_spec, split
    from mlray.train.stopping import EarlyStopping, MetricTracker
    from mlray.usecases.driver_trips import FEATURE_COLUMNS, LABEL_COLUMN, generate, training_frame

    config = TrainJobConfig.model_validate({"training": {"amp": True, "use_gpu": True, "distributed": False,
                                                            "batch_size": 256, "lr": 0.005}})
    frame = training_frame(generate(num_trips=20_000))
    data = split(TrainingData(frame, FEATURE_COLUMNS, LABEL_COLUMN), 0.2, 0, "classification")
    spec = model_spec(config, data)
    parts = build_parts(LoopSettings(config, spec), device)
    x = torch.from_numpy(data.x_train).to(device)
    y = torch.from_numpy(data.y_train).to(device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    losses = []
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(STEPS):
        index = torch.randint(0, len(x), (config.training.batch_size,), generator=generator).to(device)
        losses.append(train_step(parts, x[index], y[index]))
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_ms = (time.perf_counter() - started) / STEPS * 1000

    state = training_state(parts, 1, MetricTracker("min"), EarlyStopping(3), None)
    with tempfile.TemporaryDirectory() as folder:
        write_checkpoint(Path(folder), state, rank=0)
        loaded = read_checkpoint(Path(folder))  # map_location="cpu"
    cpu_model = spec.build()
    cpu_model.load_state_dict(loaded["model"])
    probe = torch.from_numpy(data.x_val[:256])
    with torch.no_grad():
        gpu_out = parts.core.eval()(probe.to(device)).float().cpu()
        cpu_out = cpu_model.eval()(probe)
    return {
        "status": "ok",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "amp": parts.amp,
        "scaler_scale": float(parts.scaler.get_scale()),
        "loss_first_10": round(sum(losses[:10]) / 10, 4),
        "loss_last_10": round(sum(losses[-10:]) / 10, 4),
        "step_ms": round(step_ms, 3),
        "checkpoint_tensors_on_cpu": all(t.device.type == "cpu" for t in loaded["model"].values()),
        "cpu_vs_gpu_max_abs_diff": float((gpu_out - cpu_out).abs().max()),
    }


def main() -> int:
    if not torch.cuda.is_available():
        print(json.dumps({"status": "skipped", "reason": "CUDA is not available on this machine",
                          "torch": torch.__version__}))
        return 0
    try:
        result = check(torch.device("cuda:0"))
    except Exception as exc:  # noqa: BLE001 - the check reports any failure as its result
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    ok = result["status"] == "ok" and result["checkpoint_tensors_on_cpu"] and result["cpu_vs_gpu_max_abs_diff"] < 1e-3 \
        and result["loss_last_10"] < result["loss_first_10"]
    if result["status"] == "ok" and not ok:
        result["status"] = "failed"
    print(json.dumps(result))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
