"""Jobs refuse bad configs with status 2, one readable message and no traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_job(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('training: {batch_size: "many"}', "training.batch_size"),
        ("training: {batchsize: 8}", "training.batchsize: unknown key"),
    ],
)
def test_invalid_config_exits_2_naming_the_field(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run_job("jobs.train", "--config", str(path))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # no work started, no summary


def test_missing_config_file_exits_2(tmp_path):
    result = run_job("jobs.train", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_set_override_exits_2():
    result = run_job("jobs.train", "--config", "configs/train.yaml", "--set", "training.batch_size=0")
    assert result.returncode == 2
    assert "training.batch_size" in result.stderr


def test_summary_line_is_json(capsys):
    from mlray.entrypoint import print_summary

    print_summary({"status": "ok", "metrics": {"loss": 0.5}})
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["metrics"]["loss"] == 0.5


CHATTY_JOB = """
import threading
import time

import ray

from mlray.config.base import ConfigModel
from mlray.entrypoint import run_job


class NoSettings(ConfigModel):
    pass


@ray.remote(num_cpus=0)
class Chatty:
    def start(self):
        threading.Thread(target=self.talk).start()  # keeps printing after the call has returned

    def talk(self):
        for line in range(100):
            print(f"worker line {line}", flush=True)
            time.sleep(0.02)


def main(config):
    ray.init()
    chatty = Chatty.remote()
    ray.get(chatty.start.remote())
    return {"status": "ok"}


run_job("chatty", NoSettings, main)
"""


@pytest.mark.slow
def test_the_summary_stays_last_when_the_cluster_forwards_logs(ray_cluster, tmp_path):
    """Cluster output that reaches the driver late (here an actor that keeps printing) must not follow the summary."""
    from mlray.cluster.local import client_env

    job, config = tmp_path / "chatty_job.py", tmp_path / "chatty.yaml"
    job.write_text(CHATTY_JOB)
    config.write_text("{}\n")
    env = {**client_env(), "RAY_ADDRESS": ray_cluster.gcs_address}
    result = subprocess.run([sys.executable, str(job), "--config", str(config)], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["job"] == "chatty" and summary["status"] == "ok"


# Configs that could be misread: each is refused by the real job CLI with exit 2 before any work starts. Every
# place the job would write to (storage, MLflow store, output folder, Ray's session folder) lies in tmp_path,
# so "nothing but the config file in tmp_path afterwards" shows that no work started.
JOB_WRITES = {
    "jobs.train": "storage: {{uri: {tmp}/storage}}\nmlflow: {{tracking_uri: 'sqlite:///{tmp}/mlflow.db'}}\n",
    "jobs.optimize": "storage: {{uri: {tmp}/storage}}\noutput: {{dir: {tmp}/out}}\nmlflow: {{enabled: false}}\n"
                     "problem: {{path: {instance}}}\nsolver: {{time_limit: 1}}\n",
}


def refuse(tmp_path: Path, module: str, text: str, *args: str, env_extra: dict[str, str] | None = None,
           writes: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``module`` on a config of ``text`` (after the job's own output settings); assert exit 2 with no work."""
    config = tmp_path / "config.yaml"
    instance = PROJECT_ROOT / "missing-instance"
    settings = JOB_WRITES[module].format(tmp=tmp_path, instance=instance) if writes else ""
    config.write_text(settings + text)
    env = {name: value for name, value in os.environ.items() if not name.startswith("MLRAY_")}
    env.update({"RAY_TMPDIR": str(tmp_path / "ray"), **(env_extra or {})})
    result = run_job(module, "--config", str(config), *args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # no summary: the job never ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]  # nothing written, no Ray session
    return result


def observed(result: subprocess.CompletedProcess[str], tmp_path: Path) -> str:
    """What the job said, with the test's own folder left out so the security page reads the same every run."""
    files = sorted(path.name for path in tmp_path.iterdir())
    return (f"exit {result.returncode}: {result.stderr.strip().replace(str(tmp_path), '<tmp>')}; "
            f"stdout {result.stdout!r}; files in <tmp> afterwards: {files}")


@pytest.mark.security
def test_an_empty_config_file_is_refused(tmp_path, security_probe):
    result = refuse(tmp_path, "jobs.train", "# settings to follow\n", writes=False)
    assert f"invalid config {tmp_path / 'config.yaml'}" in result.stderr and "the file is empty" in result.stderr
    security_probe("config", "python -m jobs.train --config <file with only a comment>",
                   "exit 2 naming the file, nothing runs on defaults", observed(result, tmp_path))


@pytest.mark.security
def test_a_duplicate_key_is_refused_with_key_and_lines(tmp_path, security_probe):
    result = refuse(tmp_path, "jobs.train", "training:\n  num_epochs: 1\n  num_epochs: 500\n")
    assert "training.num_epochs: duplicate key at line 5 (first at line 4)" in result.stderr
    assert str(tmp_path / "config.yaml") in result.stderr
    security_probe("config", "training.num_epochs given twice in one file (1, then 500)",
                   "exit 2 naming the key and both lines; YAML would keep the last silently",
                   observed(result, tmp_path))


@pytest.mark.security
@pytest.mark.parametrize(("uri", "scheme"), [("gs:/x", "'gs:'"), ("s3://x", "'s3://'")])
def test_a_storage_uri_neither_local_nor_gcs_is_refused_at_load(tmp_path, security_probe, uri, scheme):
    result = refuse(tmp_path, "jobs.train", "", "--set", f"storage.uri={uri}")
    assert f"storage.uri: scheme {scheme}" in result.stderr
    assert "expected a local path or gs://bucket/prefix" in result.stderr
    assert f"invalid --set storage.uri={uri}:" in result.stderr
    security_probe("config", f"--set storage.uri={uri}", "exit 2 naming the field and the scheme before any work",
                   observed(result, tmp_path))


@pytest.mark.security
def test_a_gcs_bucket_name_that_breaks_the_rules_is_refused(tmp_path, security_probe):
    result = refuse(tmp_path, "jobs.train", "", "--set", "storage.uri=gs://My_Bucket/runs")
    assert "storage.uri: bucket 'My_Bucket' breaks GCS bucket naming rules" in result.stderr
    security_probe("config", "--set storage.uri=gs://My_Bucket/runs", "exit 2 naming the bucket and the rule",
                   observed(result, tmp_path))


@pytest.mark.security
def test_an_invalid_env_override_is_blamed_on_the_variable_not_the_file(tmp_path, security_probe):
    result = refuse(tmp_path, "jobs.train", "training: {batch_size: 16}\n",
                    env_extra={"MLRAY_TRAINING__BATCH_SIZE": "-64"})
    assert "invalid environment variable MLRAY_TRAINING__BATCH_SIZE:" in result.stderr
    assert "training.batch_size: Input should be greater than 0 (got -64)" in result.stderr
    assert str(tmp_path / "config.yaml") not in result.stderr
    security_probe("config", "MLRAY_TRAINING__BATCH_SIZE=-64 over a valid file",
                   "exit 2 naming the variable, not the file", observed(result, tmp_path))


@pytest.mark.security
def test_an_invalid_set_override_is_blamed_on_the_expression(tmp_path, security_probe):
    result = refuse(tmp_path, "jobs.train", "", "--set", "training.use_gpu=yes")
    assert "invalid --set training.use_gpu=yes:" in result.stderr
    assert "training.use_gpu: expected true or false (got 'yes')" in result.stderr
    assert str(tmp_path / "config.yaml") not in result.stderr
    security_probe("config", "--set training.use_gpu=yes", "exit 2 naming the --set expression",
                   observed(result, tmp_path))


@pytest.mark.security
@pytest.mark.parametrize("name", ["../../x", "a/b"])
def test_an_optimize_run_name_that_leaves_the_storage_root_is_refused(tmp_path, security_probe, name):
    result = refuse(tmp_path, "jobs.optimize", f"run_name: {name!r}\n")
    assert "run_name: expected 1-63 letters" in result.stderr and f"(got {name!r})" in result.stderr
    security_probe("config", f"jobs.optimize with run_name: {name} (storage: <storage.uri>/{name}/optimize)",
                   "exit 2 before any folder is made", observed(result, tmp_path))


@pytest.mark.security
@pytest.mark.parametrize("value", ['"yes"', "yes", "1"])
def test_a_boolean_that_is_not_true_or_false_is_refused(tmp_path, security_probe, value):
    result = refuse(tmp_path, "jobs.train", f"training:\n  use_gpu: {value}\n")
    assert "training.use_gpu: expected true or false" in result.stderr and "(line 4)" in result.stderr
    security_probe("config", f"use_gpu: {value}", "exit 2: only true/false are booleans",
                   observed(result, tmp_path))


def test_true_and_false_from_the_environment_still_parse(tmp_path):
    """The counterpart of the strict booleans: override strings are read as YAML, so 'false' is a boolean."""
    from mlray.config import TrainJobConfig, load_config

    config = tmp_path / "config.yaml"
    config.write_text("training: {use_gpu: true}\n")
    loaded = load_config(TrainJobConfig, config, ["spot.enabled=false"],
                         environ={"MLRAY_TRAINING__USE_GPU": "false"})
    assert (loaded.training.use_gpu, loaded.spot.enabled) == (False, False)
