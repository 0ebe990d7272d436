"""Load a YAML config file into its pydantic model, with overrides.

Precedence, lowest first: model defaults < file < ``MLRAY_`` environment
variables < ``--set dotted.key=value`` overrides.

Environment overrides use a double underscore between levels, because field
names themselves contain single underscores::

    MLRAY_TRAINING__BATCH_SIZE=64   ->  training.batch_size = 64

Only variables whose first level names a field of the model apply, so one
environment can carry overrides for several jobs at once.

Nothing is left to be misread: an empty file and a key given twice are errors
(YAML itself would run on defaults, or keep the last value without a word);
booleans are YAML 1.2's ``true``/``false`` only (``yes``, ``no``, ``on``,
``off`` stay strings, which a boolean field then refuses); override values
are parsed by the same YAML rules as the file. Every problem is reported
against where its value came from: the file and line, the environment
variable, or the ``--set`` expression.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from mlray.config.base import ConfigModel

ENV_PREFIX = "MLRAY_"
ENV_LEVEL_SEPARATOR = "__"
BOOL_TAG = "tag:yaml.org,2002:bool"
MERGE_TAG = "tag:yaml.org,2002:merge"
# Validation context: the folder of the config file being loaded, for fields that name files shipped
# beside it (a Feast repository); data locations never use it (they lie under storage.uri).
CONFIG_DIR = "config_dir"

ModelT = TypeVar("ModelT", bound=ConfigModel)
Location = tuple[str | int, ...]


class ConfigError(ValueError):
    """A config that cannot be used; the message names where each problem came from and the field.

    ``problems`` maps a source ("config configs/train.yaml", "environment variable
    MLRAY_TRAINING__BATCH_SIZE", "--set training.batch_size=0") to its problems.
    """

    def __init__(self, problems: Mapping[str, list[str]]):
        self.problems = dict(problems)
        self.source = ", ".join(self.problems)
        super().__init__(
            "\n".join(
                f"invalid {source}:\n" + "\n".join(f"  - {problem}" for problem in lines)
                for source, lines in self.problems.items()
            )
        )


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: ``yes``/``no``/``on``/``off`` stay strings."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Override:
    """One ``dotted.key = value`` from the environment or ``--set``, with where it came from."""

    key: str
    value: Any
    source: str


@dataclass(frozen=True)
class ConfigFile:
    """A config file's settings and the line of every key in it."""

    source: str
    data: dict[str, Any]
    lines: dict[Location, int]


def parse_scalar(text: str) -> Any:
    """Parse an override value the way YAML would parse it in the file."""
    try:
        return yaml.load(text, Loader=YamlLoader) if text != "" else ""
    except yaml.YAMLError:
        return text


def set_dotted(tree: dict[str, Any], dotted_key: str, value: Any) -> list[str]:
    """Set ``tree[a][b][c] = value`` for ``dotted_key == "a.b.c"``, creating levels.

    Returns the dotted keys of the levels it had to create.
    """
    *parents, leaf = dotted_key.split(".")
    node, created, path = tree, [], []
    for part in parents:
        path.append(part)
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
            created.append(".".join(path))
        node = child
    node[leaf] = value
    return created


def _checked_key(dotted_key: str, source: str, spelling: str) -> str:
    if not dotted_key or any(not part for part in dotted_key.split(".")):
        raise ConfigError({source: [f"expected {spelling}, got an empty level in {dotted_key!r}"]})
    return dotted_key


def parse_set_overrides(overrides: Iterable[str]) -> list[Override]:
    """Turn ``["a.b=1", ...]`` into overrides ``a.b = 1`` whose source is the ``--set`` expression."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        source = f"--set {item}"
        if not sep or not key.strip():
            raise ConfigError({source: ["expected dotted.key=value"]})
        key = _checked_key(key.strip(), source, "dotted.key=value")
        parsed.append(Override(key, parse_scalar(raw), source))
    return parsed


def env_overrides(model_cls: type[ConfigModel], environ: Mapping[str, str]) -> list[Override]:
    """Overrides from ``MLRAY_SECTION__FIELD=value`` variables that concern ``model_cls``."""
    top_level = set(model_cls.model_fields)
    found = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        levels = name[len(ENV_PREFIX):].lower().split(ENV_LEVEL_SEPARATOR)
        if levels[0] in top_level:
            source = f"environment variable {name}"
            key = _checked_key(".".join(levels), source, "MLRAY_SECTION__FIELD")
            found.append(Override(key, parse_scalar(raw), source))
    return found


def _key_lines(node: yaml.Node, path: Location, lines: dict[Location, int], problems: list[str],
               open_nodes: set[int]) -> None:
    """Record the line of every key under ``node``; report keys given twice in one mapping."""
    if id(node) in open_nodes:  # an alias of an enclosing node: already being walked
        return
    open_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            line = key_node.start_mark.line + 1
            key_path = (*path, key_node.value)
            identity = (key_node.tag, key_node.value)
            if identity in first_seen:
                problems.append(f"{'.'.join(map(str, key_path))}: duplicate key at line {line} "
                                f"(first at line {first_seen[identity]}); YAML would silently keep the last")
            first_seen.setdefault(identity, line)
            lines[key_path] = line
            _key_lines(value_node, key_path, lines, problems, open_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, index), item.start_mark.line + 1)
            _key_lines(item, (*path, index), lines, problems, open_nodes)
    open_nodes.discard(id(node))


# Config files named for their job since the jobs table (mlray/config/jobs.py): old name -> new name.
RENAMED_CONFIG_FILES = {
    "training.yaml": "train.yaml",
    "or_tools.yaml": "optimize.yaml",
    "preprocessing.yaml": "preprocess.yaml",
    "batch_inference.yaml": "batch_predict.yaml",
}


def read_config_file(path: Path) -> ConfigFile:
    """Parse ``path``; refuse a missing or empty file, invalid YAML, duplicate keys and a non-mapping."""
    source = f"config {path}"
    if not path.is_file():
        renamed = RENAMED_CONFIG_FILES.get(path.name)
        hint = f" (configs/{path.name} is now configs/{renamed}: one name per job)" if renamed else ""
        raise ConfigError({source: [f"file not found{hint}"]})
    loader = YamlLoader(path.read_text())
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError({source: ["the file is empty (or only comments): expected a mapping of "
                                        "settings; write {} to run with every default"]})
        lines: dict[Location, int] = {}
        problems: list[str] = []
        _key_lines(node, (), lines, problems, set())
        if problems:
            raise ConfigError({source: problems})
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError({source: [f"not valid YAML: {exc}"]}) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__
        raise ConfigError({source: [f"expected a mapping at the top level, got {kind}"]})
    return ConfigFile(source, data, lines)


def read_yaml(path: Path) -> dict[str, Any]:
    return read_config_file(path).data


def describe_error(err: Mapping[str, Any]) -> str:
    """``dotted.field: what was expected (got value)`` for one pydantic error."""
    field = ".".join(str(part) for part in err["loc"]) or "<top level>"
    if err["type"] == "extra_forbidden":
        return f"{field}: unknown key (not a field of this section)"
    if err["type"] == "missing":
        return f"{field}: required field is missing"
    message = err["msg"]
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        message = str(err["ctx"]["error"])  # our validators' own words, without pydantic's "Value error, "
    if "input" in err and not isinstance(err["input"], (dict, list)):
        message = f"{message} (got {err['input']!r})"
    return f"{field}: {message}"


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: ``dotted.field: what was expected (got value)``."""
    return [describe_error(err) for err in exc.errors()]


def _nearest(location: Location, table: Mapping[Location, Any]) -> Any:
    """The entry of ``location`` or of its closest enclosing level, if any."""
    for end in range(len(location), 0, -1):
        if location[:end] in table:
            return table[location[:end]]
    return None


def validate_data(
    model_cls: type[ModelT],
    data: dict[str, Any],
    source: str,
    origins: Mapping[Location, str] | None = None,
    lines: Mapping[Location, int] | None = None,
    config_dir: str | None = None,
) -> ModelT:
    """Validate ``data``; each problem is reported against the override that set its value
    (``origins``: location -> source) or else against ``source``, with its line when known.
    ``config_dir``: the folder of the config file, against which files shipped beside it are found."""
    try:
        return model_cls.model_validate(data, context={CONFIG_DIR: config_dir} if config_dir else None)
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}
        for err in exc.errors():
            location = tuple(err["loc"])
            override = _nearest(location, origins or {})
            line = None if override else _nearest(location, lines or {})
            described = describe_error(err) + (f" (line {line})" if line else "")
            problems.setdefault(override or source, []).append(described)
        raise ConfigError(problems) from None


def load_config(
    model_cls: type[ModelT],
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> ModelT:
    """Read ``path`` (if given), apply env and ``--set`` overrides, validate.

    Raises ConfigError naming, for each offending dotted field, where its value came from.
    """
    no_file = ConfigFile("config <defaults>", {}, {})
    config_file = read_config_file(Path(path)) if path is not None else no_file
    env = os.environ if environ is None else environ
    data, origins = config_file.data, {}
    for override in env_overrides(model_cls, env) + parse_set_overrides(overrides):
        for key in [*set_dotted(data, override.key, override.value), override.key]:
            origins[tuple(key.split("."))] = override.source
    config_dir = str(Path(path).resolve().parent) if path is not None else None
    return validate_data(model_cls, data, config_file.source, origins, config_file.lines, config_dir)
