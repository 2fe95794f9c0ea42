"""YAML files and ``--set`` overrides onto the config dataclasses, refusing unknown keys and wrong types."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path

import pydantic
import yaml

from .schema import ConfigError, PipelineConfig


def typed_value(hint, value, where: str):
    """``value`` checked (and losslessly coerced: 1 -> 1.0) against the field's type by pydantic."""
    try:
        return pydantic.TypeAdapter(hint).validate_python(value)
    except pydantic.ValidationError as exc:
        expected = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
        raise ConfigError(f"{where}: expected {expected}, got {value!r} ({exc.errors()[0]['msg']})") from None


def build(cls, data, where: str):
    """Dataclass from a mapping, refusing unknown keys with a suggestion."""
    if data is None:
        return None
    if dataclasses.is_dataclass(data):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            tip = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{tip}")
        hint = hints[key]
        target = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), None)
        if dataclasses.is_dataclass(hint):
            target = hint
        if target and value is not None:
            kwargs[key] = build(target, value, f"{where}.{key}")
        else:
            kwargs[key] = typed_value(hint, value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def config_from_dict(data: dict, base_dir: str | Path = ".") -> PipelineConfig:
    data = dict(data or {})
    distill_train = (data.get("distill") or {}).get("train") if isinstance(data.get("distill"), dict) else None
    if isinstance(distill_train, dict) and "temperature" in distill_train:
        # one place per setting: the student learns the soft labels at the temperature they were made with
        raise ConfigError("config.distill.train.temperature: set pet.temperature instead (it is the distillation temperature)")
    data.setdefault("base_dir", str(Path(base_dir).resolve()))
    return build(PipelineConfig, data, "config")


def load_config(path: str | Path, overrides: dict | None = None) -> PipelineConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    for dotted, value in (overrides or {}).items():
        node = data
        keys = dotted.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return config_from_dict(data, path.parent)
