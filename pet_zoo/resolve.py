"""The explicit step between loading a config and checking it: zoo names become local folders.

``PipelineConfig.validate`` is pure; commands that run models call ``resolve_models`` first
(installing a missing known model), ``pet validate`` calls it with ``install=False`` (an installed
name is located, a missing one stays a name and is reported by nothing: a run installs it).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .install import resolve_model_path
from .registry import KNOWN_MODELS, ModelInstallError

if TYPE_CHECKING:  # the config is handed in: pet_config imports the zoo's registry, not the other way
    from pet_config.schema import PipelineConfig

# (section, field) of every config entry that may name a zoo model
MODEL_FIELDS = (("model", "path"), ("distill", "model_path"), ("template_search", "generator_path"),
                ("pet.demonstrations", "encoder_path"))


def locate(cfg: PipelineConfig, value: str | None, install: bool) -> str | None:
    """A model-zoo name that is not a local folder -> its installed folder (installing it if ``install``)."""
    if not value or Path(cfg.resolve(value)).exists():
        return value
    models_dir = cfg.resolve(cfg.models_dir)
    if not install and value in KNOWN_MODELS:
        try:
            return resolve_model_path(value, models_dir, auto_install=False)
        except ModelInstallError:  # not installed yet: a run installs it on first use
            return value
    return resolve_model_path(value, models_dir)


def resolve_models(cfg: PipelineConfig, install: bool = True) -> PipelineConfig:
    """``cfg`` with every zoo name among its model paths replaced by the installed folder."""
    for section, name in MODEL_FIELDS:
        node = cfg
        for part in section.split("."):
            node = getattr(node, part)
        setattr(node, name, locate(cfg, getattr(node, name), install))
    return cfg
