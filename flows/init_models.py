"""``pet init --backbone / --student``: a zoo name of the right kind, or a model folder, checked before any data is read.

A zoo name is written as it is (``pet run`` installs it on first use); a folder is written relative to the
config's folder, as the data paths are, and starts with ``./`` or ``../`` so that it never reads as a zoo name.
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

from pet_zoo.install import list_models
from pet_zoo.registry import KNOWN_MODELS

from .init_columns import InitError

DEFAULT = {"--backbone": "smollm2-135m-instruct", "--student": "all-minilm-l6-v2"}
ZOO_KIND = {"--backbone": "causal-lm", "--student": "encoder"}  # what each role takes from the zoo
ROLE = {"--backbone": "the PET backbone is a causal or masked language model",
        "--student": "the student is a small encoder that is distilled, exported and served"}


def _one_line(exc: Exception) -> str:
    # transformers' messages run over several lines (an "upgrade transformers" paragraph); the user gets one
    text = " ".join(str(exc).split())
    return text if len(text) <= 240 else text[:237] + "..."


def _fits(flag: str) -> str:
    return ", ".join(name for name, s in KNOWN_MODELS.items() if s.kind == ZOO_KIND[flag])


def _zoo_model(flag: str, value: str, out_dir: Path) -> tuple[str, list[str]]:
    spec = KNOWN_MODELS[value]
    if spec.kind != ZOO_KIND[flag]:
        article = "an" if spec.kind[0] in "aeiou" else "a"
        raise InitError(f"{flag} {value!r} is {article} {spec.kind} ({spec.params}); {ROLE[flag]}: {_fits(flag)}, "
                        "or a model folder")
    # `pet run` takes a folder of that name beside the config before the zoo model (pet_zoo.resolve.locate)
    for where in dict.fromkeys([out_dir, Path.cwd()]):
        if (where / value).exists():
            raise InitError(f"{flag} {value!r} is a zoo model and a folder in {str(where.resolve())!r}: write "
                            f"./{value} for the folder, or move the folder for the zoo model")
    installed = next(m.installed for m in list_models() if m.name == value)
    return value, [] if installed else [f"{flag} {value}: not installed yet ({spec.params} parameters); `pet run` "
                                        f"installs it first (or run `pet models install {value}` now)"]


def _folder(flag: str, value: str, out_dir: Path) -> str:
    try:
        folder = Path(value).expanduser()
    except RuntimeError as exc:  # ~user of no such user
        raise InitError(f"{flag} {value!r}: {exc}") from None
    if not folder.is_dir():
        close = difflib.get_close_matches(value, KNOWN_MODELS, n=1, cutoff=0.5)
        tip = f"did you mean {close[0]!r}? " if close else ""
        raise InitError(f"{flag} {value!r}: no such model folder and not a known model; {tip}known: {_fits(flag)} "
                        "(`pet models list`)")
    if not (folder / "config.json").is_file():
        raise InitError(f"{flag} {value!r}: no config.json in the folder, not a transformers model folder")
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InitError(f"{flag} {value!r}: its config.json is no transformers config ({_one_line(exc)})") from None
    from prompt_models.backbones import BackboneError, backbone_kind, student_problem  # transformers: only here
    try:
        if flag == "--backbone":
            backbone_kind(folder)  # names what is wrong with a folder that is no language model
            problem = None
        else:
            problem = student_problem(folder)
    except (BackboneError, OSError, ValueError, TypeError) as exc:
        problem = _one_line(exc).removeprefix(f"{folder}: ")  # the flag and folder lead the line already
    if problem:
        raise InitError(f"{flag} {value!r}: {problem}")
    rel = os.path.relpath(folder.resolve(), out_dir.resolve())
    return rel if rel.startswith("..") else f"./{rel}"  # never read as a zoo name


def choose_model(flag: str, value: str | None, out_dir: Path) -> tuple[str, list[str]]:
    """The config's value for ``flag`` (a zoo name or a folder path), and notes for the user."""
    if value is None:
        return DEFAULT[flag], []
    if not value.strip():
        raise InitError(f"{flag} is empty: give a name from `pet models list` or a model folder")
    if value in KNOWN_MODELS:
        return _zoo_model(flag, value, out_dir)
    return _folder(flag, value, out_dir), []
