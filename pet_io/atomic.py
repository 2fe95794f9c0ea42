"""Files and folders that appear only complete: written under a temporary name beside the target,
then renamed into place, so a reader sees the old version or the new one, never half of one.

A unit of work (one pattern model, one soft-labeled shard, one classifier) is a folder that gets a
``done.json`` marker only after the work is complete, so a rerun skips finished units and redoes
interrupted ones.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Callable, Iterator

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


def writable_problem(folder: str | Path) -> str | None:
    """Why ``folder`` could not be created and written (None: it can), read without writing."""
    for path in [Path(folder), *Path(folder).parents]:
        if path.exists():
            if not path.is_dir():
                return f"{path} is not a folder"
            if not os.access(path, os.W_OK | os.X_OK):
                return f"cannot write in {path}"
            return None
    return None


def _entries(folder: Path, depth: int) -> set[Path]:
    out: set[Path] = set()
    level = [folder]
    for _ in range(depth):
        level = [child for d in level if d.is_dir() and not d.is_symlink() for child in d.iterdir()]
        out.update(level)
    return out


@contextlib.contextmanager
def removed_on_error(folder: str | Path, depth: int = 2) -> Iterator[None]:
    """What the block creates in ``folder`` (entries down to ``depth`` levels; ``folder`` itself
    and its parents if they were missing) is removed if the block raises: a refused input leaves
    nothing behind (the Arrow cache of a file that failed its checks, say)."""
    folder = Path(folder)
    missing = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
    before = _entries(folder, depth) if missing is None else set()
    try:
        yield
    except BaseException:
        if missing is not None:
            shutil.rmtree(missing, ignore_errors=True)
        else:
            new = _entries(folder, depth) - before
            for path in new:
                if any(parent in new for parent in path.parents):
                    continue  # removed with its new parent
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise
