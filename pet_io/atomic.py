"""Files and folders that appear only complete: written under a temporary name beside the target,
unique to the writer, then renamed into place, so a reader sees the old version or the new one,
never half of one. Every writer of the project goes through ``atomic_path`` (files) or ``publish``
(unit folders).

A unit of work (one pattern model, one soft-labeled shard, one classifier) is a folder that gets a
``done.json`` marker only after the work is complete, so a rerun skips finished units and redoes
interrupted ones.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

DONE = "done.json"


def temp_name(target: str | Path) -> Path:
    """A name beside ``target`` (same folder, so a rename is atomic) that no other process or thread
    picks: a dot-name (watchers and globs skip it) with 128 random bits."""
    target = Path(target)
    return target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"


@contextlib.contextmanager
def temp_beside(target: str | Path) -> Iterator[Path]:
    """A fresh, empty temporary file beside ``target`` (created exclusively), removed on exit unless
    the block renamed it away: for writers that learn the final name only at the end."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    with open(tmp, "x"):
        pass
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Write to the yielded temporary path; it replaces ``target`` only if the block succeeds, so a
    reader sees the old file or the new one, and concurrent writers of one target never share a
    temporary file (the last rename wins, whole)."""
    with temp_beside(target) as tmp:
        yield tmp
        os.replace(tmp, target)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, obj, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent, default=str))


def save_npy_atomic(path: str | Path, array) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: np.save adds no ".npy"
        np.save(fh, array)
    return Path(path)


def is_done(folder: str | Path) -> bool:
    return (Path(folder) / DONE).exists()


def read_done(folder: str | Path) -> dict:
    return json.loads((Path(folder) / DONE).read_text())


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
    tmp = temp_name(folder)
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
