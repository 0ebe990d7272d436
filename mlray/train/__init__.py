"""Training: fault-tolerant DDP on Ray Train with checkpoints, MLflow, stop rules and Tune.

``run_training(config)`` is what ``python -m jobs.train`` calls.
"""

from mlray.train.data import TrainingData


def run_training(config, callbacks=(), on_forced_exit=None):  # noqa: ANN001, ANN201 - thin lazy re-export: importing Ray costs seconds
    from mlray.train.runner import run_training as run

    return run(config, callbacks, on_forced_exit)


__all__ = ["TrainingData", "run_training"]
