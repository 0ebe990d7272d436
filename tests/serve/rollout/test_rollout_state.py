"""Rollout state that survives controller restarts: persisted per (epoch, generation), newest readable wins.

The controller tests build ``RolloutController`` outside Serve on real storage (a local
folder or the GCS emulator); "restarting" it is building a second one on the same storage,
which is what Serve does after a crash. The end-to-end test kills the real controller replica.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mlray.serve.rollout.canary import RolloutState
from mlray.serve.rollout.controller import RolloutController
from mlray.serve.rollout.client import RolloutClient
from mlray.serve.rollout.store import KEEP_FILES, STATE_DIR, RolloutStore, file_name
from mlray.storage import Storage

AREA = "rollout state"
APP = "mlray"


def controller_config(storage_uri: str, **rollout: Any) -> dict[str, Any]:
    return {
        "app_name": APP,
        "models": {"versions": {"v1": "v1", "v2": "v2", "v3": "v3"}, "stable": "v1"},
        "rollout": {"canary": "v2", "canary_weight": 0.3, **rollout},
        "storage": {"uri": storage_uri},
        "monitoring": {"enable_metrics": False},
    }


def start(config: dict[str, Any]) -> RolloutController:
    """A controller as Serve starts one: the init args, then ``reconfigure`` with the user_config."""
    controller = RolloutController(config)
    controller.reconfigure({"models": config["models"], "rollout": config["rollout"]})
    return controller


def after_path(message: str) -> str:
    """A log line from the state file's name on (the temporary folder before it varies)."""
    return message.split(f"{STATE_DIR}/{APP}/")[-1]


def newest_file(storage_uri: str) -> str:
    store = RolloutStore(storage_uri, APP)
    return file_name(store.versions()[0])


@pytest.fixture(params=["local", "gs"])
def storage_uri(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "storage")
    return request.getfixturevalue("gcs_uri")


@pytest.mark.security
def test_a_restarted_controller_keeps_a_cleared_canary_and_a_higher_epoch(storage_uri, security_probe):
    config = controller_config(storage_uri)
    first = start(config)
    assert (first.rollout.state.canary, first.rollout.state.epoch) == ("v2", 1)
    cleared = first.update({"clear_canary": True})

    restarted = start(config)
    state = restarted.rollout.state
    assert (state.canary, state.canary_weight, state.status) == (None, 0.0, "stable")
    assert state.epoch > cleared["epoch"] and state.generation >= cleared["generation"]
    assert restarted.view()["state_uri"].endswith(file_name(state.version))
    security_probe(AREA, "controller restarted after the canary was cleared, same config (canary v2 at 0.3)",
                   "canary stays cleared; epoch higher, generation not lower",
                   f"canary={state.canary} status={state.status} (epoch, generation) "
                   f"{(cleared['epoch'], cleared['generation'])} -> {state.version}")  # fmt: skip


def test_a_changed_config_starts_a_new_rollout_that_later_restarts_keep(tmp_path):
    uri = str(tmp_path / "storage")
    first = start(controller_config(uri))
    before = first.rollout.state.version
    changed = controller_config(uri, canary="v3", canary_weight=0.1)
    first.reconfigure({"models": changed["models"], "rollout": changed["rollout"]})
    assert (first.rollout.state.canary, first.rollout.state.canary_weight) == ("v3", 0.1)
    assert first.rollout.state.version > before
    first.update({"canary_weight": 0.4})

    # Serve restarts it with the original init args and the current user_config.
    restarted = RolloutController(controller_config(uri))
    restarted.reconfigure({"models": changed["models"], "rollout": changed["rollout"]})
    assert (restarted.rollout.state.canary, restarted.rollout.state.canary_weight) == ("v3", 0.4)


def test_only_the_newest_states_are_kept(tmp_path):
    uri = str(tmp_path / "storage")
    controller = start(controller_config(uri))
    for step in range(KEEP_FILES + 5):
        controller.update({"canary_weight": round(0.05 * (step + 1), 2)})
    versions = RolloutStore(uri, APP).versions()
    assert len(versions) == KEEP_FILES and versions[0] == controller.rollout.state.version
    assert start(controller_config(uri)).rollout.state.canary_weight == controller.rollout.state.canary_weight


@pytest.mark.security
def test_a_truncated_newest_state_is_logged_and_the_canary_is_withheld(storage_uri, caplog, security_probe):
    config = controller_config(storage_uri)
    first = start(config)
    first.update({"canary_weight": 0.5})
    storage = Storage(storage_uri).child(STATE_DIR, APP)
    newest = newest_file(storage_uri)
    whole = storage.read_bytes(newest)
    storage.write_bytes(newest, whole[: len(whole) // 2])

    with caplog.at_level(logging.WARNING, logger="mlray.serve.rollout.store"):
        restarted = start(config)
    state = restarted.rollout.state
    logged = [r.getMessage() for r in caplog.records if newest in r.getMessage() and "unreadable" in r.getMessage()]
    assert logged, caplog.text
    # The lost state may have rolled the canary back: stable only, until someone sets it again.
    assert (state.canary, state.canary_weight, state.stable) == (None, 0.0, "v1")
    assert newest in state.reason and state.version > first.rollout.state.version
    security_probe(AREA, f"newest state file {newest} truncated to half its bytes, controller restarted",
                   "logged and ignored; no crash; canary withheld (stable only); epoch above the lost file's",
                   f"log: {after_path(logged[0])!r}; canary={state.canary} version={state.version}")


@pytest.mark.security
def test_replayed_or_malformed_state_files_are_ignored(tmp_path, caplog, security_probe):
    uri = str(tmp_path / "storage")
    config = controller_config(uri)
    first = start(config)
    storage = Storage(uri).child(STATE_DIR, APP)
    oldest = newest_file(uri)
    first.update({"clear_canary": True})
    # An old state copied under a newer name (a replay), and valid JSON that is no state at all.
    storage.write_bytes(file_name((50, 1)), storage.read_bytes(oldest))
    storage.write_text(file_name((51, 1)), '{"state": {"stable": "v1", "status": "bogus"}}')

    restarted = start(config)
    state = restarted.rollout.state
    assert state.canary is None and state.epoch == 52
    observed = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(observed) == 2
    security_probe(AREA, "old state replayed under a newer file name; valid JSON with status 'bogus'",
                   "both ignored; the canary cleared by the newest good state stays cleared",
                   f"canary={state.canary} epoch={state.epoch}; log: {[after_path(m) for m in observed]}")


@pytest.mark.security
def test_a_stale_controller_cannot_overwrite_a_newer_incarnation(tmp_path, security_probe):
    config = controller_config(str(tmp_path / "storage"))
    stale = start(config)
    replacement = start(config)  # Serve's new replica while the old one still answers
    replacement.update({"clear_canary": True})
    stale_write = stale.update({"canary_weight": 1.0})  # the stale one keeps writing after that

    state = start(config).rollout.state
    assert stale_write["canary"] == "v2" and stale_write["epoch"] < replacement.rollout.state.epoch
    assert (state.canary, state.canary_weight) == (None, 0.0)
    assert state.epoch == replacement.rollout.state.epoch + 1
    security_probe(AREA, "the replaced controller (epoch 1) writes canary v2 at weight 1.0 after its replacement "
                   "(epoch 2) cleared the canary", "the next controller resumes the replacement's state",
                   f"stale write at {(stale_write['epoch'], stale_write['generation'])}; next controller at "
                   f"{state.version} with canary={state.canary}")  # fmt: skip


def test_a_replica_adopts_only_newer_states():
    initial = RolloutState({"v1": "a", "v2": "b"}, "v1")
    client = RolloutClient(controller=None, initial=initial)
    newer = RolloutState({"v1": "a", "v2": "b"}, "v1", canary=None, status="rolled_back", generation=1, epoch=2)
    assert client.adopt(newer.to_wire()).version == (2, 1)
    stale = RolloutState({"v1": "a", "v2": "b"}, "v1", canary="v2", canary_weight=0.3, status="canary",
                         generation=9, epoch=1)  # fmt: skip
    assert client.adopt(stale.to_wire()).canary is None
    later = RolloutState({"v1": "a", "v2": "b"}, "v2", status="promoted", generation=2, epoch=2)
    assert client.adopt(later.to_wire()).stable == "v2"


# -- end to end: the real controller replica killed under Serve ------------------------------------------------

CONTROLLER_CLASS = f"ServeReplica:{APP}:RolloutController"
ROUTING = ("stable", "canary", "canary_weight", "status", "epoch", "generation")


def controller_actor(gcs_address: str) -> Any:
    from ray.util.state import list_actors

    actors = list_actors(address=gcs_address, filters=[("state", "=", "ALIVE")], limit=1000)
    found = [a for a in actors if a.class_name == CONTROLLER_CLASS]
    return found[0] if len(found) == 1 else None


def kill_controller(gcs_address: str) -> None:
    """``ray.kill`` the controller replica's actor, then wait for the one Serve starts in its place."""
    import ray

    from tests.serve.conftest import wait_for

    killed = controller_actor(gcs_address)
    ray.kill(ray.get_actor(killed.name, namespace="serve"), no_restart=False)
    wait_for(lambda: (a := controller_actor(gcs_address)) and a.actor_id != killed.actor_id, 120,
             "Serve to start a new controller", interval_s=0.5)  # fmt: skip


def converged(client, replicas: int, newer_than: tuple[int, int] = (0, 0)) -> tuple[dict, dict]:
    """Poll ``GET /v1/rollout`` until ``replicas`` distinct replicas answered holding the controller's
    state at a version above ``newer_than``; the controller's view and what each replica held."""
    from tests.serve.conftest import wait_for

    held: dict[str, dict] = {}

    def agreed() -> tuple[dict, dict] | None:
        response = client.get("/v1/rollout")
        if response.status_code != 200:  # the controller is down: the route asks it
            return None
        view = response.json()
        held[view["this_replica"]["replica"]] = view["this_replica"]
        want = {name: view[name] for name in ROUTING}
        if (view["epoch"], view["generation"]) <= newer_than or len(held) < replicas:
            return None
        if all({name: state[name] for name in ROUTING} == want for state in held.values()):
            return view, {replica: {name: state[name] for name in ROUTING} for replica, state in held.items()}
        return None

    return wait_for(agreed, 120, f"{replicas} replicas to hold the controller's state above {newer_than}",
                    interval_s=0.05)  # fmt: skip


def served_versions(serve_url: str, row: list[float], count: int) -> set[str]:
    from mlray.serve.api.client import post_concurrently

    responses = post_concurrently(serve_url, [{"instances": [row]}] * count, concurrency=8)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:3]
    return {r.json()["model_version"] for r in responses}


@pytest.mark.slow
@pytest.mark.security
def test_a_killed_controller_comes_back_without_the_rolled_back_canary(
    deploy, serve_url, bundles, ray_cluster, security_probe
):
    from mlray.serve.api.client import post_concurrently
    from tests.serve.conftest import sample_rows, wait_for

    client = deploy(
        service={"min_workers": 2, "max_workers": 2},
        rollout={"canary": "broken", "canary_weight": 0.5, "max_error_rate": 0.05, "promote_after_windows": None},
    )
    row = sample_rows(1)[0]

    def rolled_back() -> bool:
        post_concurrently(serve_url, [{"instances": [row]}] * 40, concurrency=8)
        return client.get("/v1/rollout").json()["status"] == "rolled_back"

    wait_for(rolled_back, 90, "the failing canary to be rolled back", interval_s=0.0)
    before, _ = converged(client, replicas=2)
    assert before["canary"] is None

    # 1. The controller replica's actor killed for real; Serve starts another, which must carry on.
    kill_controller(ray_cluster.gcs_address)
    first_version = (before["epoch"], before["generation"])
    after, replicas = converged(client, replicas=2, newer_than=first_version)
    assert after["epoch"] > before["epoch"] and after["generation"] >= before["generation"]
    assert (after["status"], after["canary"], after["canary_weight"], after["stable"]) == ("rolled_back", None, 0.0, "v1")
    assert served_versions(serve_url, row, 100) == {"v1"}
    security_probe(AREA, "rollout controller actor killed (ray.kill) after the canary 'broken' was rolled back",
                   "new controller at a higher epoch; status rolled_back, no canary; every replica holds its state",
                   f"(epoch, generation) {first_version} -> {(after['epoch'], after['generation'])}, "
                   f"status {after['status']}, canary {after['canary']}; replicas {replicas}")  # fmt: skip

    # 2. The newest state file truncated, then the controller killed again: logged, ignored, nothing comes back.
    store = RolloutStore(str(bundles.root), APP)
    newest = file_name(store.versions()[0])
    whole = store.storage.read_bytes(newest)
    store.storage.write_bytes(newest, whole[:20])
    kill_controller(ray_cluster.gcs_address)
    second_version = (after["epoch"], after["generation"])
    recovered, replicas = converged(client, replicas=2, newer_than=second_version)
    assert recovered["epoch"] > after["epoch"]
    assert (recovered["status"], recovered["canary"], recovered["stable"]) == ("rolled_back", None, "v1")
    notes = [e["reason"] for e in recovered["events"] if newest in e["reason"]]
    assert notes and "unreadable" in notes[0]
    assert served_versions(serve_url, row, 100) == {"v1"}
    security_probe(AREA, f"newest state file {newest} truncated to 20 bytes, controller killed again",
                   "restarted controller reports the file unreadable, falls back; serving goes on, stable only",
                   f"event {notes[0]!r}; (epoch, generation) {second_version} -> "
                   f"{(recovered['epoch'], recovered['generation'])}, canary {recovered['canary']}; replicas {replicas}")
