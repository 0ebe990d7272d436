"""Optimization survives storage faults: a GCS server that goes away mid-solve, a store actor killed
mid-solve, a truncated checkpoint, and writes that fail until storage is back."""

from __future__ import annotations

import json
import logging

import pytest
import ray

from mlray.optimize import RoutingOptimizer, SchedulingOptimizer, read_problem
from mlray.optimize.incumbent import CHECKPOINT_FILE, CheckpointTarget, CheckpointWriter
from mlray.storage import EMULATOR_ENV, Storage
from mlray.storage.emulator import GcsEmulator
from tests.optimize.solving import BackgroundSolve, checkpoint_file, live_actors
from tests.waiting import wait_for

AREA = "optimization storage"


def store_actor(dashboard_url: str, run_name: str):
    found = live_actors(dashboard_url, run_name, "IncumbentStore")
    return found and ray.get_actor(found["incumbent-store"])


def incidents_with(result_or_report, text: str) -> list[str]:
    return [i["what"] for i in result_or_report.incidents if text in i["what"]]


@pytest.mark.security
def test_failed_checkpoint_writes_are_reported_and_retried_with_the_newest_incumbent(
    tmp_path, security_probe
):
    blocked = tmp_path / "storage"
    blocked.write_text("a file where the checkpoint folder should be")  # every write fails
    incidents: list[str] = []
    target = CheckpointTarget(Storage(str(blocked / "run")), "fp", 0, write_timeout=10, retry_interval=0.2)
    writer = CheckpointWriter(target, incidents.append)
    writer.submit({"fingerprint": "fp", "objective": 7})
    failures = wait_for(lambda: [i for i in incidents if " failed (" in i], 10, "a reported failure")
    assert writer.writes == 0 and writer.busy  # kept for a retry, not dropped
    writer.submit({"fingerprint": "fp", "objective": 6})  # a better incumbent arrives meanwhile
    blocked.unlink()  # storage is back
    wait_for(lambda: writer.writes == 1, 10, "the retried write")
    assert json.loads((blocked / "run" / CHECKPOINT_FILE).read_text())["objective"] == 6
    written_again = f"checkpoint written to {blocked / 'run' / CHECKPOINT_FILE} again (objective 6)"
    assert incidents[-1].startswith(written_again)
    assert writer.wait_idle(5) and not writer.busy
    security_probe(
        AREA,
        "checkpoint folder unwritable (a file in its place), then fixed",
        "write failure reported, retried; newest incumbent written once storage is back",
        f"{failures[0]} | {incidents[-1]}",
    )


@pytest.mark.slow
@pytest.mark.security
def test_gcs_server_stopped_mid_solve_the_solve_goes_on_and_the_checkpoint_follows_once_it_is_back(
    ray_cluster, instance, make_config, monkeypatch, caplog, security_probe
):
    problem = read_problem(instance("cvrp/X-n101-k25.vrp"))  # PyVRP keeps improving it for a while
    private = GcsEmulator().start()  # the session's emulator serves every other test: stop our own
    try:
        private.create_bucket("faults")
        monkeypatch.setenv(EMULATOR_ENV, private.url)  # this driver and the store it starts use it
        config = make_config(
            run_name="gcs-outage",
            **{
                "storage.uri": "gs://faults/opt",
                "solver.time_limit": 25,
                "output.plots": False,
                "checkpoint.interval": 0.0,
                "checkpoint.write_timeout": 1.0,
                "checkpoint.retry_interval": 0.5,
            },
        )
        storage = Storage("gs://faults/opt").child("gcs-outage", "optimize")
        caplog.set_level(logging.WARNING, logger="mlray.optimize")
        solve = BackgroundSolve(RoutingOptimizer(config), problem)
        wait_for(lambda: storage.exists(CHECKPOINT_FILE), 120, "the first checkpoint")
        store = store_actor(ray_cluster.dashboard_url, "gcs-outage")
        private.stop()
        faults = wait_for(
            lambda: incidents_with(ray.get(store.report.remote()), "checkpoint write"), 30, "a reported fault"
        )
        private.start()  # same port; in memory, so empty: whatever appears was written after the outage
        private.create_bucket("faults")
        wait_for(lambda: storage.exists(CHECKPOINT_FILE), 60, "a checkpoint on the restarted server")
        result = solve.result(timeout=120)
        assert result.feasible, result.violations
        assert result.status == "time_limit"
        assert incidents_with(result, "unanswered after 1 s") or incidents_with(result, " failed (")
        recovered = incidents_with(result, " again (objective ")
        assert recovered, result.incidents
        assert any("checkpoint write" in r.getMessage() for r in caplog.records)  # logged by the driver
        assert not result.checkpoint_pending
        written = json.loads(storage.read_text(CHECKPOINT_FILE))
        assert written["objective"] == result.objective  # the final incumbent, flushed at the end
    finally:
        private.stop()
    security_probe(
        AREA,
        "GCS server stopped mid-solve (X-n101-k25, checkpoint on every improvement)",
        "solve goes on to its time limit with a feasible result; the failing write is logged and reported",
        f"status={result.status}, feasible={result.feasible}, objective={result.objective}; {faults[0]}",
    )
    security_probe(
        AREA,
        "GCS server back on the same port (empty)",
        "the pending checkpoint is written; the final one equals the result",
        f"{recovered[0]}; read back objective {written['objective']} (result {result.objective})",
    )


@pytest.mark.security
def test_store_actor_killed_mid_solve_restarts_from_its_checkpoint(
    ray_cluster, instance, make_config, security_probe
):
    problem = read_problem(instance("jsp/ta01"))  # not proven optimal within the time limit
    config = make_config(run_name="kill-store", **{"solver.time_limit": 8, "output.plots": False})
    solve = BackgroundSolve(SchedulingOptimizer(config), problem)
    wait_for(lambda: checkpoint_file(config).exists(), 120, "the first checkpoint")
    store = store_actor(ray_cluster.dashboard_url, "kill-store")
    before = json.loads(checkpoint_file(config).read_text())
    ray.kill(store, no_restart=False)
    result = solve.result(timeout=120)
    assert result.feasible, result.violations
    assert result.store_restarts == 1
    restored = incidents_with(result, "restarted by Ray; restored objective")
    assert len(restored) == 1, result.incidents
    restored_objective = int(restored[0].split("restored objective ")[1].split()[0])
    assert result.objective <= restored_objective <= before["objective"]  # the incumbent was not lost
    assert result.history[: len(before["history"])] == before["history"]  # nor its history
    assert all(s.error is None and s.ended_by != "dropped" for s in result.arm_stats), result.arm_stats
    security_probe(
        AREA,
        "incumbent store actor killed mid-solve (ta01)",
        "Ray restarts it from its checkpoint; incumbent and history kept; arms go on",
        f"{restored[0]}; checkpoint before kill {before['objective']}, final {result.objective}, "
        f"store_restarts={result.store_restarts}, feasible={result.feasible}",
    )


@pytest.mark.security
def test_truncated_checkpoint_is_reported_and_ignored(
    ray_cluster, instance, make_config, gcs_uri, security_probe
):
    problem = read_problem(instance("jsp/ft06"))
    config = make_config(
        run_name="truncated", **{"storage.uri": gcs_uri, "solver.time_limit": 5, "output.plots": False}
    )
    first = SchedulingOptimizer(config).parallel_solve(problem)
    assert first.checkpoint_writes >= 1
    storage = Storage(gcs_uri).child("truncated", "optimize")
    whole = storage.read_text(CHECKPOINT_FILE)
    storage.write_text(CHECKPOINT_FILE, whole[: len(whole) // 2])  # a partial upload's worth
    result = SchedulingOptimizer(config).parallel_solve(problem)  # resume is on by default
    assert result.feasible and result.objective == 55
    assert result.resumed_from is None  # started fresh
    reported = incidents_with(result, "not valid JSON (truncated or damaged")
    assert len(reported) == 1 and reported[0].endswith("ignored, starting fresh"), result.incidents
    assert json.loads(storage.read_text(CHECKPOINT_FILE))["objective"] == 55  # whole again
    security_probe(
        AREA,
        "incumbent.json cut to half its bytes before a resume (ft06 on gs://)",
        "reported and ignored; the solve starts fresh and succeeds; the checkpoint is rewritten",
        f"{reported[0]}; objective={result.objective}, feasible={result.feasible}",
    )
