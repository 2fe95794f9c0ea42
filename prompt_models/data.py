"""Loading, validating and fingerprinting text-classification data.

Everything here is framework free: no Prefect, no MLflow. Files may be CSV, TSV, JSON
Lines, JSON (a list of records or the LM-BFF ``{"idx": {...}}`` mapping) or Parquet.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd


class DataValidationError(ValueError):
    """Raised when a data file cannot be used as asked; the message says why and where."""


@dataclass(frozen=True)
class InputExample:
    text_a: str
    text_b: str | None = None
    label: str | None = None
    guid: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DataSpec:
    """Where one split lives and how to read it."""

    path: str
    text_a: str = "text_a"
    text_b: str | None = None
    label: str | None = "label"
    format: str | None = None  # csv, tsv, jsonl, json, parquet; None = from the suffix
    header: bool = True  # CSV/TSV only; without a header columns are named 0, 1, ...
    limit: int | None = None  # keep the first N rows (after shuffling with `seed` if given)
    seed: int | None = None
    read_options: dict = field(default_factory=dict)


_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: str | Path) -> str:
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in _SUFFIX_FORMATS:
        raise DataValidationError(
            f"{path}: cannot tell the file format from its name; set `format` to one of "
            f"{sorted(set(_SUFFIX_FORMATS.values()))}"
        )
    return _SUFFIX_FORMATS[suffixes[-1]]


LINE = "_line"  # where a row sits in its file, as an editor counts (1-based), for error messages


def opener_for(path: Path):
    """``gzip.open`` for a ``.gz`` file, else ``open``."""
    return gzip.open if path.suffix == ".gz" else open


def checked_source(spec: DataSpec) -> tuple[Path, str]:
    """The split's file and format, after the checks every reader needs: it exists, and a text
    format decodes as UTF-8 (a bad byte named by line and column)."""
    path = Path(spec.path)
    if not path.exists():
        raise DataValidationError(f"data file not found: {path}")
    fmt = (spec.format or detect_format(path)).lower()
    if fmt in ("csv", "tsv", "jsonl", "json"):
        _check_utf8(path, opener_for(path))
    return path, fmt


def _check_utf8(path: Path, opener) -> None:
    """A decoding error named by line and column, not by byte offset."""
    with opener(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataValidationError(
                    f"{path}: line {n}, column {exc.start + 1}: not UTF-8 (byte 0x{raw[exc.start]:02x}); "
                    "save the file as UTF-8"
                ) from None


def check_field_counts(path: Path, fmt: str) -> None:
    """A row with more fields than the first line (an unquoted separator inside a text) is an error
    naming its line: pandas would silently take the extra field as the row index or drop it."""
    sep = "\t" if fmt == "tsv" else ","
    with opener_for(path)(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep, quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)
        first = next(reader, None) or []
        for row in reader:
            if len(row) > len(first):
                raise DataValidationError(
                    f"{path}: line {reader.line_num} has {len(row)} fields, the first line {len(first)}: "
                    f"quote texts that contain {sep!r}" + (" (or use .tsv)" if sep == "," else "")
                )


def iter_jsonl(path: Path):
    """(file line, record) of a JSON Lines file; a broken record is an error naming its line."""
    with opener_for(path)(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(f"{path}: line {n}, column {exc.colno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataValidationError(f"{path}: line {n}: expected a JSON object, got {type(row).__name__}")
            yield n, row


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = list(iter_jsonl(path))
    if not records:
        return pd.DataFrame()
    return pd.DataFrame([row for _, row in records]).assign(**{LINE: [n for n, _ in records]})


def read_table(spec: DataSpec) -> pd.DataFrame:
    path, fmt = checked_source(spec)
    opener = opener_for(path)
    try:
        if fmt in ("csv", "tsv"):
            check_field_counts(path, fmt)
            sep = "\t" if fmt == "tsv" else ","
            opts = {"sep": sep, "dtype": str, "keep_default_na": False}
            if fmt == "tsv":
                opts["quoting"] = 3  # QUOTE_NONE: GLUE/LM-BFF TSVs contain bare quotes
            opts.update(spec.read_options)
            df = pd.read_csv(path, header=0 if spec.header else None, **opts)
            df.columns = [str(c) for c in df.columns]
            # one row per line after the header (a quoted field spanning lines shifts this count)
            df[LINE] = range(2 if spec.header else 1, len(df) + (2 if spec.header else 1))
        elif fmt == "jsonl":
            df = _read_jsonl(path)
        elif fmt == "json":
            with opener(path, "rt", encoding="utf-8") as fh:
                try:
                    obj = json.load(fh)
                except json.JSONDecodeError as exc:
                    raise DataValidationError(
                        f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
                    ) from None
            if isinstance(obj, dict):
                # LM-BFF / USB layout: {"0": {"text_a": ..., "label": ...}, ...}
                df = pd.DataFrame([dict(v, _key=k) for k, v in obj.items()])
            elif isinstance(obj, list):
                df = pd.DataFrame(obj)
            else:
                raise DataValidationError(f"{path}: JSON must be a list of records or a mapping of records")
        elif fmt == "parquet":
            df = pd.read_parquet(path)
        else:
            raise DataValidationError(f"{path}: unknown format {fmt!r}")
    except DataValidationError:
        raise
    except Exception as exc:  # parser errors become one clear message
        raise DataValidationError(f"{path}: could not read as {fmt}: {exc}") from exc
    if spec.seed is not None:
        df = df.sample(frac=1.0, random_state=spec.seed).reset_index(drop=True)
    if spec.limit is not None:
        df = df.head(spec.limit)
    return df


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    return str(value)


def load_examples(
    spec: DataSpec,
    labels: Sequence[str] | None = None,
    require_labels: bool = True,
) -> list[InputExample]:
    """Read a split and check it: required columns, non-empty texts, known labels.

    Every problem found is reported at once, with the file's line numbers (1-based, as an editor
    shows them; record numbers for JSON and Parquet), so a user fixes the file in one go.
    """
    df = read_table(spec)
    needed = [spec.text_a] + ([spec.text_b] if spec.text_b else [])
    if require_labels:
        if not spec.label:
            raise DataValidationError(f"{spec.path}: a label column is required for this split")
        needed.append(spec.label)
    if len(df) == 0 and not [c for c in df.columns if c != LINE]:
        raise DataValidationError(f"{spec.path}: no rows")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        present = [c for c in df.columns if c != LINE]
        raise DataValidationError(f"{spec.path}: missing column(s) {missing}; the file has {present}")
    if len(df) == 0:
        raise DataValidationError(f"{spec.path}: no rows")
    problems: list[str] = []
    known = set(labels) if labels is not None else None
    examples: list[InputExample] = []
    has_label = bool(spec.label) and spec.label in df.columns
    for i, row in enumerate(df.to_dict("records")):
        # file line (CSV/TSV/JSONL), else the record's 1-based position (JSON, Parquet)
        at = f"line {row[LINE]}" if LINE in row else f"record {i + 1}"
        text_a = _as_text(row[spec.text_a])
        text_b = _as_text(row[spec.text_b]) if spec.text_b else None
        if text_a is None or not text_a.strip():
            problems.append(f"{at}: empty {spec.text_a!r}")
            continue
        if spec.text_b and (text_b is None or not text_b.strip()):
            problems.append(f"{at}: empty {spec.text_b!r}")
            continue
        label = _as_text(row[spec.label]) if has_label else None
        if label is not None:
            label = label.strip()
        if require_labels and (label is None or label == ""):
            problems.append(f"{at}: empty label")
            continue
        if known is not None and label not in (None, "") and label not in known:
            problems.append(f"{at}: unknown label {label!r} (expected one of {sorted(known)})")
            continue
        examples.append(InputExample(text_a=text_a, text_b=text_b, label=label or None, guid=f"{i}"))
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise DataValidationError(f"{spec.path}: {len(problems)} bad row(s): {shown}{more}")
    return examples


def example_digest(example: InputExample) -> str:
    """Content digest of one example's texts (not its label or position)."""
    h = hashlib.sha256()
    h.update((example.text_a or "").encode())
    h.update(b"\x00")
    h.update((example.text_b or "").encode())
    return h.hexdigest()[:32]


def examples_digest(examples: Iterable[InputExample]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps([ex.text_a, ex.text_b, ex.label]).encode())
        h.update(b"\n")
    return h.hexdigest()


def save_examples(examples: Sequence[InputExample], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_dict()) + "\n")
    tmp.replace(path)
    return path


def read_examples(path: str | Path) -> list[InputExample]:
    """The examples of a normalised copy: JSON Lines, or Parquet (unlabeled copies and shards)."""
    if str(path).endswith(".parquet"):
        import pyarrow.parquet as pq

        cols = pq.read_table(path).to_pydict()
        texts_b = cols.get("text_b") or [None] * len(cols["text_a"])
        return [InputExample(a, b) for a, b in zip(cols["text_a"], texts_b)]
    with open(path, encoding="utf-8") as fh:
        return [InputExample(**json.loads(line)) for line in fh if line.strip()]


def examples_to_frame(examples: Sequence[InputExample]) -> pd.DataFrame:
    return pd.DataFrame([ex.to_dict() for ex in examples])
