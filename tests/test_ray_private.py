"""The private Ray APIs behind ``mlray.ray_private``: present and shaped as that module expects.

On a Ray upgrade the version check fails first and names what to re-check; the other tests say
which of the internals moved.
"""

from __future__ import annotations

import inspect

import ray

from mlray import ray_private


def test_ray_is_the_version_the_private_apis_were_checked_against():
    assert ray.__version__ == ray_private.CHECKED_RAY_VERSION, (
        f"Ray {ray.__version__} is not {ray_private.CHECKED_RAY_VERSION}: check each function in "
        "mlray/ray_private.py against the new Ray (the tests below, the drain and preemption tests), "
        "then update CHECKED_RAY_VERSION"
    )


def test_ray_train_names_its_checkpoint_snapshot_file():
    name = ray_private.checkpoint_manager_snapshot_filename()
    assert isinstance(name, str) and name.endswith(".json")


def test_ray_train_context_has_the_report_counters_and_queue_that_say_a_report_is_pending():
    import dataclasses

    from ray.train.v2._internal.execution.context import ExecutionContext, TrainContext

    assert {"current_report_index", "report_call_index"} <= {f.name for f in dataclasses.fields(TrainContext)}
    assert "result_queue" in {f.name for f in dataclasses.fields(ExecutionContext)}


def test_ray_train_context_holds_the_preemption_info_its_watcher_sends():
    import dataclasses

    from ray.train.v2._internal.execution.context import TrainContext
    from ray.train.v2._internal.execution.preemption import PreemptionContext

    assert "preemption_context" in {f.name for f in dataclasses.fields(TrainContext)}
    assert PreemptionContext().preemption_info is None  # no notice until the watcher sends one


def test_the_worker_exit_hook_can_be_replaced_and_restored():
    import ray._private.worker as ray_worker

    # the worker's SIGTERM handler calls the hook by name, with a message and exit_code=
    handler_source = inspect.getsource(ray_worker.Worker.main_loop)
    assert "SIGTERM" in handler_source and "raise_sys_exit_with_custom_error_message(" in handler_source
    original = ray_private.worker_exit()
    assert list(inspect.signature(original).parameters)[1:] == ["exit_code"]

    def replacement(message: str, exit_code: int = 1) -> None:
        raise AssertionError("never called here")

    ray_private.set_worker_exit(replacement)
    try:
        assert ray_private.worker_exit() is replacement
    finally:
        ray_private.set_worker_exit(original)
    assert ray_private.worker_exit() is original


def test_the_gcs_client_has_the_calls_the_drain_hook_makes(ray_cluster):
    records = ray_private.node_records(ray_cluster.gcs_address, timeout_s=10)
    alive = [record for record in records if record.alive]
    assert len(alive) == 1 and alive[0].node_id == ray.get_runtime_context().get_node_id()
    from ray._raylet import GcsClient

    client = GcsClient(address=ray_cluster.gcs_address)
    assert callable(client.drain_node)  # the drain itself is made for real in tests/train/test_drain.py


def test_a_serve_batch_wrapper_reads_back_the_settings_it_was_given_and_set_to():
    from ray import serve

    async def echo(items: list[int]) -> list[int]:
        return items

    batched = serve.batch(max_batch_size=3, batch_wait_timeout_s=0.5)(echo)
    assert ray_private.serve_batch_settings(batched) == (3, 0.5)
    batched.set_max_batch_size(7)
    batched.set_batch_wait_timeout_s(0.0)
    assert ray_private.serve_batch_settings(batched) == (7, 0.0)


def test_serve_multiplexed_keeps_its_models_where_multiplexed_models_reads_them():
    from ray.serve import api
    from ray.serve.multiplex import _ModelMultiplexWrapper

    # the wrapper is attached under this name on the first call, and holds the loaded models in ``models``
    assert 'multiplex_attr = "__serve_multiplex_wrapper"' in inspect.getsource(api.multiplexed)
    assert "self.models = OrderedDict()" in inspect.getsource(_ModelMultiplexWrapper.__init__)

    def load(model_id: str) -> str:
        return model_id

    assert ray_private.multiplexed_models(load) == {}
    setattr(load, "__serve_multiplex_wrapper", type("Wrapper", (), {"models": {"v1": "model"}})())
    assert ray_private.multiplexed_models(load) == {"v1": "model"}


def test_serves_controller_client_has_the_http_options_a_replica_reads():
    from ray.serve import context
    from ray.serve._private.client import ServeControllerClient
    from ray.serve.config import HTTPOptions

    assert callable(context._get_global_client)
    assert isinstance(inspect.getattr_static(ServeControllerClient, "http_config"), property)
    assert "host" in HTTPOptions.model_fields
