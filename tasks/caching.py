"""Content-digest cache keys and finished-work markers shared by all tasks.

A unit of work (one pattern model, one soft-labeled shard, one classifier) lives in a folder named
by the digest of everything that determines its result: the model's bytes, the data's content,
the template, verbalizer, hyper-parameters and seed. The folder gets a ``done.json`` marker only
after the work is complete, so a rerun skips finished units and redoes interrupted ones.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path

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


def mark_done(folder: str | Path, info: dict) -> dict:
    folder = Path(folder)
    tmp = folder / (DONE + ".tmp")
    tmp.write_text(json.dumps(info, indent=2, default=str))
    tmp.replace(folder / DONE)
    return info


def fresh_dir(folder: str | Path) -> Path:
    """An empty folder for work about to be (re)done: leftovers of an interrupted try are removed."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
