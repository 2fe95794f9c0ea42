"""Watch a folder for new unlabeled data files and emit ``pet.unlabeled.arrived`` for each.

``python -m deployments.watch INBOX [--config CONFIG] [--interval 60] [--settle 30] [--once]``
``python -m deployments.watch INBOX --replay FILE`` announces FILE again.

The inbox contract:
- formats: CSV, TSV, JSON Lines, JSON, Parquet (``.gz`` for JSON/JSONL), by file suffix; one text
  per row in the column the config names for ``data.unlabeled.text_a`` (else ``data.train.text_a``);
  labels, if present, are ignored.
- a file is taken only once it has stopped changing for ``--settle`` seconds; a producer that
  writes ``.name.tmp`` (names starting with ``.`` are ignored) and renames it when done is never
  read half-written.
- with ``--config`` each file is read and checked first; a bad file is moved to
  ``INBOX/quarantine/`` with ``FILE.reason.txt`` saying why, and is not announced.
- a file is recorded (``INBOX/.announced.json``, by content digest, so a re-copy under another
  name is not re-sent) only after its event was handed to the Prefect API; a failed send is
  retried on the next scan.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Callable

from flows.quiet import quiet_noise
from pet_io.atomic import write_json_atomic, write_text_atomic
from pet_io.digests import file_sha256
from pet_io.sources import SUFFIX_FORMATS

from .definitions import EVENT

STATE = ".announced.json"
QUARANTINE = "quarantine"


class EventNotSent(RuntimeError):
    pass


def file_digest(path: Path) -> str:
    return file_sha256(path)[:24]


def _data_files(inbox: Path) -> list[Path]:
    out = []
    for p in sorted(inbox.iterdir()):
        suffixes = [s.lower() for s in p.suffixes if s.lower() != ".gz"]
        if p.is_file() and not p.name.startswith(".") and suffixes and suffixes[-1] in SUFFIX_FORMATS:
            out.append(p)
    return out


def emit_arrival(path: Path, digest: str) -> None:
    from prefect.events import emit_event
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise EventNotSent("PREFECT_API_URL is not set: the event would go nowhere (start a server, set the URL)")
    from prefect import get_client

    # emit_event only queues the event: a server that is down must be found out before, not after
    with get_client(sync_client=True) as client:
        down = client.api_healthcheck()
    if down is not None:
        raise EventNotSent(f"the Prefect API at {url} does not answer: {down}")
    event = emit_event(
        event=EVENT,
        resource={"prefect.resource.id": f"pet.unlabeled.{digest}", "prefect.resource.name": path.name},
        payload={"path": str(path.resolve()), "digest": digest},
    )
    if event is None:
        raise EventNotSent(f"Prefect did not accept the event for {path}")


def checker_for(config_path: str) -> Callable[[Path], None]:
    """Reads a file as the relabel flow will (the config's unlabeled columns); raises what is wrong."""
    from pet_config.loading import load_config
    from pet_io.reader import UNLABELED, read_splits

    cfg = load_config(config_path)

    def check(path: Path) -> None:
        # the flow's reader, its Arrow cache in a scratch folder
        read_splits({UNLABELED: cfg.with_unlabeled(str(path)).spec(UNLABELED)}, cfg.labels)

    return check


def _settled(path: Path, settle: float, now: float) -> bool:
    return now - path.stat().st_mtime >= settle


def _quarantine(inbox: Path, path: Path, reason: str) -> Path:
    folder = inbox / QUARANTINE
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    shutil.move(str(path), target)
    write_text_atomic(folder / f"{path.name}.reason.txt", reason + "\n")
    return target


def scan(
    inbox: str | Path,
    emit: Callable[[Path, str], None] = emit_arrival,
    check: Callable[[Path], None] | None = None,
    settle: float = 0.0,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Announce every settled, valid data file in ``inbox`` whose content has not been announced yet."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise NotADirectoryError(f"inbox {inbox} is not a folder")
    state_path = inbox / STATE
    seen = set(json.loads(state_path.read_text())) if state_path.exists() else set()
    new = []
    now = time.time()
    for path in _data_files(inbox):
        if not _settled(path, settle, now):
            continue  # still being written (or just finished): look again next scan
        d = file_digest(path)
        if d in seen:
            continue
        if check is not None:
            try:
                check(path)
            except Exception as exc:  # any reason the relabel flow would fail on it
                log(f"quarantined {path.name}: {exc}")
                _quarantine(inbox, path, str(exc))
                continue
        try:
            emit(path, d)
        except Exception as exc:  # not recorded: retried on the next scan
            log(f"not announced {path.name} (will retry): {exc}")
            continue
        seen.add(d)
        new.append(path)
        _write_state(state_path, seen)  # after each confirmed send: a crash loses nothing
        log(f"announced {path}")
    return new


def replay(inbox: str | Path, name: str) -> None:
    """Forget FILE's digest so the next scan announces it again."""
    inbox = Path(inbox)
    path = inbox / name
    if not path.is_file():
        raise FileNotFoundError(f"no file {name!r} in {inbox}")
    state_path = inbox / STATE
    seen = set(json.loads(state_path.read_text())) if state_path.exists() else set()
    seen.discard(file_digest(path))
    _write_state(state_path, seen)


def _write_state(path: Path, seen: set) -> None:
    write_json_atomic(path, sorted(seen), indent=None)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inbox")
    ap.add_argument("--config", help="check each file against this pipeline config before announcing it")
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=30.0, help="seconds a file must be unchanged before it is read")
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--replay", metavar="FILE", help="announce FILE (a name in INBOX) again on the next scan")
    args = ap.parse_args(argv)
    quiet_noise(0)  # `datasets` reads each file: no progress bars in the watcher's log
    if args.replay:
        replay(args.inbox, args.replay)
    check = checker_for(args.config) if args.config else None
    while True:
        scan(args.inbox, check=check, settle=args.settle)
        if args.once:
            return
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
