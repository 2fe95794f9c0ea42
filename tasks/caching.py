"""Content-digest cache keys and finished-work markers shared by all tasks.

A unit of work (one pattern model, one soft-labeled shard, one classifier) lives in a folder named
by the digest of everything that determines its result: the model's bytes, the data's content,
the template, verbalizer, hyper-parameters and seed. The folder gets a ``done.json`` marker only
after the work is complete, so a rerun skips finished units and redoes interrupted ones.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import threading
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

DONE = "done.json"


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:24]


@lru_cache(maxsize=64)
def _dir_digest(path: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(path)).encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:24]


def model_digest(path: str | Path) -> str:
    """Digest of a model folder's bytes (memoised on names, sizes and modification times)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model path {p} does not exist")
    stamp = tuple(
        (str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(p.rglob("*")) if f.is_file()
    )
    return _dir_digest(str(p), stamp)


def is_done(folder: str | Path) -> bool:
    return (Path(folder) / DONE).exists()


def read_done(folder: str | Path) -> dict:
    return json.loads((Path(folder) / DONE).read_text())


def write_json_atomic(path: str | Path, obj, indent: int | None = 2) -> Path:
    """Write JSON beside ``path`` and rename it into place: readers see the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=indent, default=str))
    tmp.replace(path)
    return path


def save_npy_atomic(path: str | Path, array) -> Path:
    """``np.save`` to a temp name unique to this process and thread, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
    return path


def mark_done(folder: str | Path, info: dict) -> dict:
    write_json_atomic(Path(folder) / DONE, info)
    return info


def publish(folder: str | Path, write: Callable[[Path], dict]) -> dict:
    """Build a unit in a private temp folder and rename it into place once it is done.

    ``write(tmp)`` fills the temp folder (beside ``folder``, so the rename is atomic) and returns the
    unit's record, written as its ``done.json``. Readers never see a half-written ``folder``, and two
    workers building the same unit at once do not clobber each other: the first rename wins and the
    later worker returns the winner's record.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        info = mark_done(tmp, write(tmp))
        if folder.exists() and not is_done(folder):
            shutil.rmtree(folder, ignore_errors=True)  # an unfinished folder of the older in-place layout
        try:
            os.rename(tmp, folder)
        except OSError:
            if is_done(folder):  # another worker published the same unit first: its result stands
                return read_done(folder)
            raise
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def train_cfg_key(train_cfg) -> dict:
    """The training settings that change a result (progress bars and eval batch size do not)."""
    d = dataclasses.asdict(train_cfg)
    d.pop("progress", None)
    d.pop("eval_batch_size", None)
    return d
