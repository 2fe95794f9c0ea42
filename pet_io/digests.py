"""Content digests that name cached work and files: of any JSON-able value, of a file's bytes, of a
model folder's bytes. (The digests of examples are the core's: ``prompt_models.examples``.)"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path


def digest(obj, length: int = 24) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys), hex, cut to ``length``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def hash_file(h, path: str | Path):
    """``h`` updated with the bytes of ``path``, read 1 MiB at a time."""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h


def file_sha256(path: str | Path) -> str:
    return hash_file(hashlib.sha256(), path).hexdigest()


@lru_cache(maxsize=64)
def _dir_digest(path: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for f in sorted(Path(path).rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(path)).encode())
            hash_file(h, f)
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
