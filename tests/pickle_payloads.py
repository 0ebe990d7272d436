"""A pickle payload for security tests: unpickling it runs ``touch <marker>``.

What a crafted checkpoint, weights file or pickled MLflow model would carry; the
tests assert the marker never appears.
"""

from __future__ import annotations

import io
import os
import shlex
from pathlib import Path

import torch
from torch import nn


class CreatesMarker(nn.Module):
    """A module (so ``mlflow.pytorch.log_model`` takes it) whose ``__reduce__`` runs a shell command."""

    def __init__(self, marker: Path):
        super().__init__()
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


def pickled_payload(marker: Path, key: str = "0.weight") -> bytes:
    """``torch.save`` of a dict whose value at ``key`` runs the payload when unpickled."""
    buffer = io.BytesIO()
    torch.save({key: CreatesMarker(marker)}, buffer)
    return buffer.getvalue()
