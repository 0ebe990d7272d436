"""Storage hygiene of a run: folders Ray Train never registered and ``.tmp-*`` objects of killed uploads."""

from __future__ import annotations

import json
import logging

from mlray.ray_private import checkpoint_manager_snapshot_filename
from mlray.storage import Storage
from mlray.train.checkpoint.files import epoch_of

log = logging.getLogger(__name__)


def registered_checkpoints(run_storage: Storage) -> set[str]:
    """Folder names Ray Train's checkpoint manager knows for the run (kept, latest, pending): its snapshot.

    Empty when there is no snapshot or it does not parse: then nothing counts as unregistered.
    """
    snapshot_name = checkpoint_manager_snapshot_filename()
    if not run_storage.exists(snapshot_name):
        return set()
    try:
        snapshot = json.loads(run_storage.read_text(snapshot_name))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        log.warning("Ray Train's checkpoint snapshot of %s is unreadable (%s): pruning nothing",
                    run_storage.url(), exc)
        return set()
    results = [*snapshot.get("checkpoint_results", []), *snapshot.get("pending_training_results", []),
               snapshot.get("latest_checkpoint_result") or {}]
    return {result["checkpoint_dir_name"] for result in results if result.get("checkpoint_dir_name")}


def prune_unregistered_checkpoints(run_storage: Storage) -> list[str]:
    """Delete the run's checkpoint folders Ray Train never registered; the URIs removed.

    Registered folders, the latest among them, are never touched; without a
    readable snapshot nothing is deleted.
    """
    registered = registered_checkpoints(run_storage)
    if not registered:
        return []
    removed = []
    for name in run_storage.list():
        if epoch_of(name) is not None and name not in registered:
            run_storage.delete(name)
            removed.append(run_storage.url(name))
    return removed


def tidy_run_storage(run_storage: Storage, stale_temp_after_s: float) -> dict[str, list[str]]:
    """Stale ``.tmp-*`` objects and unregistered checkpoint folders of one run, removed; what went."""
    tidied = {
        "temporaries": run_storage.sweep_temporaries(stale_temp_after_s),
        "unregistered_checkpoints": prune_unregistered_checkpoints(run_storage),
    }
    for kind, uris in tidied.items():
        if uris:
            log.info("removed %d %s under %s: %s", len(uris), kind.replace("_", " "), run_storage.url(), uris)
    return tidied
