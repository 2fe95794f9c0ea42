"""Content digests that name cached work: of any JSON-able value, and of a model folder's bytes."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path


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
