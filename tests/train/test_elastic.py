"""Elastic training on a multi-node local cluster: a node lost for good, the run goes on with the worker left;
a node added, the run grows back to two workers. In a child process with a cluster of its own
(``tests/train/elastic_run.py``): nodes come and go, which the session's single-node cluster must not see."""

from __future__ import annotations

import json

import pytest

from tests.train.conftest import training_config
from tests.train.test_drain import run_child, tail

pytestmark = pytest.mark.slow
CHILD_TIMEOUT_S = 600


def test_a_lost_node_shrinks_the_run_and_a_new_node_grows_it_back(small_data_dir, tmp_path):
    config = training_config(small_data_dir, str(tmp_path / "storage"), f"sqlite:///{tmp_path}/m.db",
                             run_name="elastic",
                             training={"num_workers": [1, 2], "num_epochs": 1000, "batch_size": 16,
                                       "elastic_resize_interval_s": 5, "max_failures": 5,
                                       "worker_group_start_timeout_s": 15,
                                       "checkpointing": {"frequency": 1000, "keep_best": 1, "every_n_steps": 25}},
                             mlflow={"enabled": False})
    config_path, result_path, log_path = tmp_path / "config.json", tmp_path / "result.json", tmp_path / "child.log"
    config_path.write_text(json.dumps(config.model_dump(mode="json")))
    run_child(config_path, result_path, log_path, module="tests.train.elastic_run", timeout_s=CHILD_TIMEOUT_S)
    assert result_path.exists(), tail(log_path)
    result = json.loads(result_path.read_text())
    context = f"{json.dumps(result, indent=1)}\n{tail(log_path)}"
    assert result["errors"] == [], context
    assert all(result["control_on_driver_node"]), context  # the stop request must survive the node loss
    worlds = [world for _, world, first in result["starts"] if first is not None]
    # two workers, one after the node went, two again once a node came back
    assert worlds[:1] == [2] and 1 in worlds and worlds[-1] == 2 and worlds.index(1) < len(worlds) - 1, context
    assert result["summary"]["status"] == "preempted", context  # stopped by the child once it grew back
    print(f"continued on one worker {result['continued_on_one_after_s']:.1f} s after the node loss; "
          f"two again {result['grew_back_after_s']:.1f} s after a node came back")
