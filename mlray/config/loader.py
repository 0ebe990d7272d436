"""Load a YAML config file into its pydantic model, with overrides.

Precedence, lowest first: model defaults < file < ``MLRAY_`` environment
variables < ``--set dotted.key=value`` overrides.

Environment overrides use a double underscore between levels, because field
names themselves contain single underscores::

    MLRAY_TRAINING__BATCH_SIZE=64   ->  training.batch_size = 64

Only variables whose first level names a field of the model apply, so one
environment can carry overrides for several jobs at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from mlray.config.base import ConfigModel

ENV_PREFIX = "MLRAY_"
ENV_LEVEL_SEPARATOR = "__"

ModelT = TypeVar("ModelT", bound=ConfigModel)


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid config {source}:\n{lines}")


def parse_scalar(text: str) -> Any:
    """Parse an override value the way YAML would parse it in the file."""
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def set_dotted(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``dotted_key == "a.b.c"``, creating levels."""
    *parents, leaf = dotted_key.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def parse_set_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """Turn ``["a.b=1", ...]`` into ``[("a.b", 1), ...]``."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", [f"{item!r}: expected dotted.key=value"])
        parsed.append((key.strip(), parse_scalar(raw)))
    return parsed


def env_overrides(model_cls: type[ConfigModel], environ: Mapping[str, str]) -> list[tuple[str, Any]]:
    """Overrides from ``MLRAY_SECTION__FIELD=value`` variables that concern ``model_cls``."""
    top_level = set(model_cls.model_fields)
    found = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        levels = name[len(ENV_PREFIX):].lower().split(ENV_LEVEL_SEPARATOR)
        if levels[0] in top_level:
            found.append((".".join(levels), parse_scalar(raw)))
    return found


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(str(path), ["file not found"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [f"expected a mapping at the top level, got {type(data).__name__}"])
    return data


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: ``dotted.field: what was expected (got value)``."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "<top level>"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (not a field of this section)"
        elif err["type"] == "missing":
            message = "required field is missing"
        elif "input" in err and not isinstance(err["input"], (dict, list)):
            message = f"{message} (got {err['input']!r})"
        problems.append(f"{field}: {message}")
    return problems


def validate_data(model_cls: type[ModelT], data: dict[str, Any], source: str) -> ModelT:
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_validation_error(exc)) from None


def load_config(
    model_cls: type[ModelT],
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> ModelT:
    """Read ``path`` (if given), apply env and ``--set`` overrides, validate.

    Raises ConfigError naming the file and each offending dotted field.
    """
    source = str(path) if path is not None else "<defaults>"
    data = read_yaml(Path(path)) if path is not None else {}
    env = os.environ if environ is None else environ
    for key, value in env_overrides(model_cls, env) + parse_set_overrides(overrides):
        set_dotted(data, key, value)
    return validate_data(model_cls, data, source)
