"""Watch a folder for new unlabeled data files and emit ``pet.unlabeled.arrived`` for each.

``python -m deployments.watch INBOX [--interval 60] [--once]``. A file is announced once per
content digest (remembered in INBOX/.announced.json), so renames and re-copies are not re-sent.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Callable

from prompt_models.data import _SUFFIX_FORMATS

from .serve import EVENT

STATE = ".announced.json"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:24]


def _data_files(inbox: Path) -> list[Path]:
    out = []
    for p in sorted(inbox.iterdir()):
        suffixes = [s.lower() for s in p.suffixes if s.lower() != ".gz"]
        if p.is_file() and not p.name.startswith(".") and suffixes and suffixes[-1] in _SUFFIX_FORMATS:
            out.append(p)
    return out


def emit_arrival(path: Path, digest: str) -> None:
    from prefect.events import emit_event

    emit_event(
        event=EVENT,
        resource={"prefect.resource.id": f"pet.unlabeled.{digest}", "prefect.resource.name": path.name},
        payload={"path": str(path.resolve()), "digest": digest},
    )


def scan(inbox: str | Path, emit: Callable[[Path, str], None] = emit_arrival) -> list[Path]:
    """Announce every data file in ``inbox`` whose content has not been announced yet."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise NotADirectoryError(f"inbox {inbox} is not a folder")
    state_path = inbox / STATE
    seen = set(json.loads(state_path.read_text())) if state_path.exists() else set()
    new = []
    for path in _data_files(inbox):
        d = file_digest(path)
        if d in seen:
            continue
        emit(path, d)
        seen.add(d)
        new.append(path)
        state_path.write_text(json.dumps(sorted(seen)))  # after each emit: a crash loses nothing
    return new


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("inbox")
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--once", action="store_true")
    args = ap.parse_args(argv)
    while True:
        for p in scan(args.inbox):
            print(f"announced {p}")
        if args.once:
            return
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
