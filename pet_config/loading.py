"""YAML files and ``--set`` overrides onto the pydantic config; any problem becomes one
``ConfigError`` line naming the file or the dotted key."""
from __future__ import annotations

import difflib
import typing
from pathlib import Path

import pydantic
import yaml

from .schema import ConfigError, PipelineConfig

# keys that once existed where nothing read them: say where the setting lives
MOVED = {"temperature": "pet.temperature (the soft labels' and the distillation's temperature)"}


def _model_at(loc: tuple) -> type[pydantic.BaseModel] | None:
    """The config model class at a (pydantic) location, e.g. ("pet", "train") -> PatternTrainConfig."""
    cls: typing.Any = PipelineConfig
    for part in loc:
        if isinstance(part, int) or not (isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)):
            return None
        field = cls.model_fields.get(part)
        if field is None:
            return None
        hint = field.annotation
        cls = next((a for a in typing.get_args(hint) if isinstance(a, type) and issubclass(a, pydantic.BaseModel)), hint)
    return cls if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel) else None


def one_line(exc: pydantic.ValidationError) -> str:
    """The first error of a validation, as ``config.KEY: what is wrong``."""
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    where = ".".join(("config",) + loc)
    if err["type"] == "extra_forbidden":
        parent, key = ".".join(("config",) + loc[:-1]), loc[-1]
        if key in MOVED:
            return f"{parent}: unknown key {key!r}; set {MOVED[key]}"
        cls = _model_at(tuple(err["loc"][:-1]))
        close = difflib.get_close_matches(key, list(cls.model_fields) if cls else [], n=1)
        tip = f"; did you mean {close[0]!r}?" if close else ""
        return f"{parent}: unknown key {key!r}{tip}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "value_error":  # a cross-field check: its message names the keys
        return msg if not loc else f"{where}: {msg}"
    if err["type"] == "missing":
        return f"{where} is required"
    return f"{where}: {msg}, got {err['input']!r}"


def config_from_dict(data: dict, base_dir: str | Path = ".") -> PipelineConfig:
    data = dict(data or {})
    data.setdefault("base_dir", str(Path(base_dir).resolve()))
    try:
        return PipelineConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(one_line(exc)) from None


def apply_overrides(data: dict, overrides: dict | None) -> dict:
    """``{"pet.train.max_steps": 5}`` set into the nested mapping (a section made where missing)."""
    for dotted, value in (overrides or {}).items():
        node = data
        keys = dotted.split(".")
        for k in keys[:-1]:
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {dotted}: config.{'.'.join(keys[:keys.index(k) + 1])} is not a section")
            node = child
        node[keys[-1]] = value
    return data


def load_config(path: str | Path, overrides: dict | None = None) -> PipelineConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{at}: not valid YAML ({getattr(exc, 'problem', None) or 'syntax error'})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return config_from_dict(apply_overrides(data, overrides), path.parent)
