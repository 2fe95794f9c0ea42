"""Files and folders that appear only complete: written under a temporary name beside the target,
then renamed into place, so a reader sees the old version or the new one, never half of one.

A unit of work (one pattern model, one soft-labeled shard, one classifier) is a folder that gets a
``done.json`` marker only after the work is complete, so a rerun skips finished units and redoes
interrupted ones.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

DONE = "done.json"


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
