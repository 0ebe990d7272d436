import os
import re
from pathlib import Path

import pytest

from mlray.config import ConfigError, OptimizeJobConfig, TrainJobConfig, load_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_spec_shapes_are_accepted(tmp_path):
    path = write(
        tmp_path,
        """
training: {distributed: true, num_epochs: 100, batch_size: 32, checkpointing: {enabled: true, frequency: 5}}
timeouts: {total_runtime: 3600, iteration: 300}
spot: {enabled: true, checkpointing: {enabled: true}}
monitoring: {enable_metrics: true}
""",
    )
    config = load_config(TrainJobConfig, path)
    assert config.training.checkpointing.frequency == 5
    assert config.timeouts.iteration == 300


@pytest.mark.parametrize("name", sorted(p.name for p in (PROJECT_ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_validate(name):
    from mlray.config.registry import model_for_file

    model_cls = model_for_file(name)
    load_config(model_cls, PROJECT_ROOT / "configs" / name, environ={})


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("training: {batch_size: many}", "training.batch_size", "valid integer"),
        ("training: {batch_size: 0}", "training.batch_size", "greater than 0"),
        ("timeouts: {total_runtime: -5}", "timeouts.total_runtime", "greater than 0"),
        ("training: {batch_sise: 8}", "training.batch_sise", "unknown key"),
        ("trainig: {}", "trainig", "unknown key"),
    ],
)
def test_invalid_values_name_the_field(tmp_path, text, field, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(TrainJobConfig, path, environ={})
    message = str(info.value)
    assert str(path) in message
    assert f"{field}:" in message
    assert expected in message


def test_a_config_file_under_its_old_name_points_to_the_new_one(tmp_path):
    with pytest.raises(ConfigError, match=r"configs/training.yaml is now configs/train.yaml"):
        load_config(TrainJobConfig, tmp_path / "training.yaml")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(TrainJobConfig, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(TrainJobConfig, write(tmp_path, "training: [unclosed"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(TrainJobConfig, write(tmp_path, "- a list"))


def test_precedence_defaults_file_env_set(tmp_path):
    path = write(tmp_path, "training: {batch_size: 16, num_epochs: 7}")
    environ = {"MLRAY_TRAINING__BATCH_SIZE": "24", "MLRAY_SOLVER__TYPE": "routing", "OTHER": "x"}
    config = load_config(TrainJobConfig, path, ["training.num_epochs=3"], environ=environ)
    assert config.training.batch_size == 24  # env beats file
    assert config.training.num_epochs == 3  # --set beats file
    assert config.training.checkpointing.frequency == 5  # default kept
    overridden = load_config(TrainJobConfig, path, ["training.batch_size=8"], environ=environ)
    assert overridden.training.batch_size == 8  # --set beats env


def test_env_override_for_other_job_is_ignored_but_applies_to_its_own():
    environ = {"MLRAY_SOLVER__TYPE": "routing"}
    load_config(TrainJobConfig, None, environ=environ)  # no solver section: ignored
    assert load_config(OptimizeJobConfig, None, environ=environ).solver.type == "routing"


def test_set_override_errors_are_config_errors():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(TrainJobConfig, None, ["training.batch_size"], environ={})
    with pytest.raises(ConfigError, match="training.batch_size"):
        load_config(TrainJobConfig, None, ["training.batch_size=-1"], environ={})


def load_text(tmp_path: Path, text: str, model=TrainJobConfig, overrides=(), environ=None):
    return load_config(model, write(tmp_path, text), overrides, environ=environ or {})


@pytest.mark.parametrize("text", ["", "\n\n", "# all defaults, I thought\n", "null\n", "~\n"])
def test_a_file_without_settings_is_refused_but_an_empty_mapping_is_not(tmp_path, text):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    assert str(tmp_path / "config.yaml") in str(info.value)
    assert "empty" in str(info.value) or "got null" in str(info.value)
    assert load_text(tmp_path, "{}\n") == TrainJobConfig()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("run_name: a\nrun_name: b\n", "run_name: duplicate key at line 2 (first at line 1)"),
        ("training:\n  batch_size: 8\n  lr: 0.1\n  batch_size: 16\n",
         "training.batch_size: duplicate key at line 4 (first at line 2)"),
        ("training: {batch_size: 8, batch_size: 16}\n", "training.batch_size: duplicate key at line 1"),
        ("solver:\n  arms:\n    - {kind: cp_sat}\n    - kind: routing\n      seed: 1\n      seed: 2\n",
         "solver.arms.1.seed: duplicate key at line 6 (first at line 5)"),
    ],
)
def test_a_key_given_twice_is_refused_with_its_lines(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, OptimizeJobConfig if "solver" in text else TrainJobConfig)
    assert expected in str(info.value)
    assert str(tmp_path / "config.yaml") in str(info.value)


def test_the_same_key_in_different_sections_is_not_a_duplicate(tmp_path):
    config = load_text(tmp_path, "spot: {enabled: false}\nmlflow: {enabled: false}\n")
    assert (config.spot.enabled, config.mlflow.enabled) == (False, False)


@pytest.mark.parametrize("value", ['"yes"', "yes", "on", "1", '"true"', "Y"])
def test_booleans_are_only_true_or_false(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, f"training:\n  use_gpu: {value}\n")
    assert "training.use_gpu: expected true or false" in str(info.value)
    assert "(line 2)" in str(info.value)


def test_numbers_are_not_booleans(tmp_path):
    with pytest.raises(ConfigError, match="training.num_workers: expected a number, not true or false"):
        load_text(tmp_path, "training: {num_workers: true}\n")
    assert load_text(tmp_path, "timeouts: {iteration: null}\n").timeouts.iteration is None


def test_override_strings_are_read_by_yaml_rules_then_validated_strictly(tmp_path):
    config = load_text(tmp_path, "training: {use_gpu: true}\n", overrides=["training.amp=true"],
                       environ={"MLRAY_TRAINING__USE_GPU": "false", "MLRAY_SPOT__ENABLED": "False"})
    assert (config.training.use_gpu, config.training.amp, config.spot.enabled) == (False, True, False)
    with pytest.raises(ConfigError, match="--set training.amp=yes"):
        load_text(tmp_path, "{}", overrides=["training.amp=yes"])
    with pytest.raises(ConfigError, match="environment variable MLRAY_TRAINING__AMP"):
        load_text(tmp_path, "{}", environ={"MLRAY_TRAINING__AMP": "1"})


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs:/x", "scheme 'gs:' must be followed by '//'"),
        ("s3://bucket/x", "scheme 's3://' is not supported"),
        ("file:///tmp/x", "scheme 'file://' is not supported"),
        ("gs://", "bucket ''"),
        ("gs://My_Bucket/x", "bucket 'My_Bucket' breaks GCS bucket naming rules: use lower-case"),
        ("gs://ab/x", "bucket 'ab' breaks GCS bucket naming rules: use 3-63 characters"),
        (f"gs://{'a' * 64}/x", "use 3-63 characters"),
        ("gs://-bucket/x", "starting and ending with a letter or digit"),
        ("gs://192.168.0.1/x", "must not be an IP address"),
        ("gs://goog-runs/x", "must not start with 'goog'"),
        ("gs://my-g00gle-runs/x", "contain 'google'"),
        ("gs://mlray-runs/a/../../other", "'..' level"),
        ("gs://mlray-runs/a//b", "an empty"),
        ("gs://mlray-runs/a?b", "'?' or '#'"),
        ("", "got an empty string"),
    ],
)
def test_storage_uris_are_checked_at_load(tmp_path, uri, expected):
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, f"storage:\n  uri: {uri!r}\n")
    message = str(info.value)
    assert "storage.uri:" in message and expected in message
    assert "expected a local path or gs://bucket/prefix" in message


@pytest.mark.parametrize("uri", ["runs/storage", "../elsewhere", "/abs/path", "gs://mlray-test", "gs://mlray-test/a/b/",
                                 "gs://runs.example.com/x", f"gs://{'a' * 63}/x", "gs://my_bucket-1/p"])
def test_local_paths_and_well_formed_gcs_uris_pass(tmp_path, uri):
    # A relative local root is made absolute against the working directory once, at load.
    expected = uri if uri.startswith(("gs://", "/")) else os.path.abspath(uri)
    assert load_text(tmp_path, f"storage: {{uri: {uri!r}}}\n").storage.uri == expected


def test_every_storage_location_read_through_storage_is_checked():
    from pydantic import ValidationError

    from mlray.config import BatchPredictJobConfig, PreprocessJobConfig

    with pytest.raises(ValidationError, match="output"):
        PreprocessJobConfig(output="s3://bucket/data")
    for field in ("input_uri", "output_uri"):
        with pytest.raises(ValidationError, match=field):
            BatchPredictJobConfig.model_validate({"batch": {field: "gs:/bucket/x"}})


def models_with_run_name():
    from mlray.config.registry import config_files

    return sorted({model for model in config_files().values() if "run_name" in model.model_fields}, key=str)


def test_training_tune_and_optimize_share_the_run_name_rule():
    assert {model.__name__ for model in models_with_run_name()} >= {"TrainJobConfig", "TuneJobConfig",
                                                                     "OptimizeJobConfig"}


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "-x", "a..b", "a b", "x" * 64, ""])
def test_run_names_that_could_leave_their_folder_are_refused_by_every_job(name):
    for model in models_with_run_name():
        with pytest.raises(ConfigError, match="run_name: expected 1-63 letters"):
            load_config(model, None, [f"run_name={name}"], environ={})


@pytest.mark.parametrize("name", ["mlray-train", "demo-E-n13-k4", "run_2.v1", "x" * 63])
def test_usual_run_names_pass(name):
    for model in models_with_run_name():
        assert load_config(model, None, [f"run_name={name}"], environ={}).run_name == name


def test_errors_are_blamed_on_the_source_of_the_value(tmp_path):
    path = write(tmp_path, "training:\n  lr: 0.1\n  batch_sise: 8\n")
    environ = {"MLRAY_TRAINING__BATCH_SIZE": "0", "MLRAY_TRAINING__NUM_WORKERS__X": "1"}
    with pytest.raises(ConfigError) as info:
        load_config(TrainJobConfig, path, ["training.num_epochs=many"], environ=environ)
    problems = info.value.problems
    assert problems[f"config {path}"] == [
        "training.batch_sise: unknown key (not a field of this section) (line 3)"]
    assert problems["environment variable MLRAY_TRAINING__BATCH_SIZE"][0].startswith("training.batch_size: ")
    assert problems["environment variable MLRAY_TRAINING__NUM_WORKERS__X"][0].startswith("training.num_workers: ")
    assert problems["--set training.num_epochs=many"][0].startswith("training.num_epochs: ")


def test_an_env_override_error_does_not_blame_the_file(tmp_path):
    path = write(tmp_path, "training: {batch_size: 16}\n")
    with pytest.raises(ConfigError) as info:
        load_config(TrainJobConfig, path, environ={"MLRAY_TRAINING__BATCH_SIZE": "-3"})
    assert str(path) not in str(info.value)
    assert "invalid environment variable MLRAY_TRAINING__BATCH_SIZE:" in str(info.value)


@pytest.mark.parametrize("bad", ["training..batch_size=1", ".x=1", "x.=1"])
def test_set_keys_with_empty_levels_are_refused(bad):
    with pytest.raises(ConfigError, match=f"invalid --set {re.escape(bad)}:"):
        load_config(TrainJobConfig, None, [bad], environ={})
