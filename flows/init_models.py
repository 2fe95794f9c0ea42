"""``pet init --backbone / --student``: a zoo name of the right kind, or a model folder, checked before any data is read.

A zoo name is written as it is (``pet run`` installs it on first use); a folder is written relative to the
config's folder, as the data paths are.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from pet_zoo.install import list_models
from pet_zoo.registry import KNOWN_MODELS
from prompt_models.backbones import BackboneError, backbone_kind

from .init_columns import InitError

DEFAULT = {"--backbone": "smollm2-135m-instruct", "--student": "all-minilm-l6-v2"}
ZOO_KIND = {"--backbone": "causal-lm", "--student": "encoder"}  # what each role takes from the zoo
ROLE = {"--backbone": "the PET backbone is a causal or masked language model",
        "--student": "the student is a small encoder that is distilled, exported and served"}


def choose_model(flag: str, value: str | None, out_dir: Path) -> tuple[str, list[str]]:
    """The config's value for ``flag`` (a zoo name or a folder path), and notes for the user."""
    if value is None:
        return DEFAULT[flag], []
    fits = [name for name, spec in KNOWN_MODELS.items() if spec.kind == ZOO_KIND[flag]]
    if value in KNOWN_MODELS:
        spec = KNOWN_MODELS[value]
        if spec.kind != ZOO_KIND[flag]:
            article = "an" if spec.kind[0] in "aeiou" else "a"
            raise InitError(f"{flag} {value!r} is {article} {spec.kind} ({spec.params}); {ROLE[flag]}: one of {fits}, "
                            "or a model folder")
        installed = next(m.installed for m in list_models() if m.name == value)
        return value, [] if installed else [f"{flag} {value}: not installed yet; `pet run` installs it first "
                                            f"(or run `pet models install {value}` now)"]
    folder = Path(value).expanduser()
    if not folder.is_dir():
        close = difflib.get_close_matches(value, fits, n=1, cutoff=0.5)
        tip = f"did you mean {close[0]!r}? " if close else ""
        raise InitError(f"{flag} {value!r}: no such model folder and not a known model; {tip}known: {fits} "
                        "(`pet models list`)")
    try:
        if flag == "--backbone":
            backbone_kind(folder)  # names what is wrong with a folder that is no language model
        elif not (folder / "config.json").is_file():
            raise BackboneError(f"{folder}: no config.json, not a transformers model folder")
    except BackboneError as exc:
        raise InitError(f"{flag} {exc}") from None
    return os.path.relpath(folder.resolve(), out_dir.resolve()), []
