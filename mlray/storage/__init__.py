"""Artifact and checkpoint storage at a local path or ``gs://`` URI."""

from mlray.storage.filesystem import EMULATOR_ENV, Storage, emulator_host

__all__ = ["EMULATOR_ENV", "Storage", "emulator_host"]
