from pathlib import Path

import pytest

from mlray.config import ConfigError, OrToolsJobConfig, TrainingJobConfig, load_config

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
    config = load_config(TrainingJobConfig, path)
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
        load_config(TrainingJobConfig, path, environ={})
    message = str(info.value)
    assert str(path) in message
    assert f"{field}:" in message
    assert expected in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(TrainingJobConfig, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(TrainingJobConfig, write(tmp_path, "training: [unclosed"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(TrainingJobConfig, write(tmp_path, "- a list"))


def test_precedence_defaults_file_env_set(tmp_path):
    path = write(tmp_path, "training: {batch_size: 16, num_epochs: 7}")
    environ = {"MLRAY_TRAINING__BATCH_SIZE": "24", "MLRAY_SOLVER__TYPE": "routing", "OTHER": "x"}
    config = load_config(TrainingJobConfig, path, ["training.num_epochs=3"], environ=environ)
    assert config.training.batch_size == 24  # env beats file
    assert config.training.num_epochs == 3  # --set beats file
    assert config.training.checkpointing.frequency == 5  # default kept
    overridden = load_config(TrainingJobConfig, path, ["training.batch_size=8"], environ=environ)
    assert overridden.training.batch_size == 8  # --set beats env


def test_env_override_for_other_job_is_ignored_but_applies_to_its_own():
    environ = {"MLRAY_SOLVER__TYPE": "routing"}
    load_config(TrainingJobConfig, None, environ=environ)  # no solver section: ignored
    assert load_config(OrToolsJobConfig, None, environ=environ).solver.type == "routing"


def test_set_override_errors_are_config_errors():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(TrainingJobConfig, None, ["training.batch_size"], environ={})
    with pytest.raises(ConfigError, match="training.batch_size"):
        load_config(TrainingJobConfig, None, ["training.batch_size=-1"], environ={})
