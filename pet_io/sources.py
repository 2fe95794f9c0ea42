"""Where a split lives and the checks every reader of it shares: format from the name, gzip,
UTF-8 named by line and column, field counts, JSON Lines records.

A problem is a ``DataValidationError`` naming the file (and line); no Prefect, no MLflow.
"""
from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence


class DataValidationError(ValueError):
    """Raised when a data file cannot be used as asked; the message says why and where."""


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

    @property
    def sep(self) -> str | None:
        """The CSV/TSV separator the split's ``read_options`` set, if any (pandas' and ``datasets``' name)."""
        return self.read_options.get("sep")


SUFFIX_FORMATS = {
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
    if not suffixes or suffixes[-1] not in SUFFIX_FORMATS:
        raise DataValidationError(
            f"{path}: cannot tell the file format from its name; set `format` to one of "
            f"{sorted(set(SUFFIX_FORMATS.values()))}"
        )
    return SUFFIX_FORMATS[suffixes[-1]]


LINE = "_line"  # where a row sits in its file, as an editor counts (1-based), for error messages


def opener_for(path: Path):
    """``gzip.open`` for a ``.gz`` file, else ``open``."""
    return gzip.open if path.suffix.lower() == ".gz" else open


def checked_source(spec: DataSpec) -> tuple[Path, str]:
    """The split's file and format, after the checks every reader needs: it exists, and a text
    format decodes as UTF-8 (a bad byte named by line and column)."""
    path = Path(spec.path)
    if not path.exists():
        raise DataValidationError(f"data file not found: {path}")
    check_not_empty(path)
    fmt = (spec.format or detect_format(path)).lower()
    if fmt in ("csv", "tsv", "jsonl", "json"):
        check_utf8(path, opener_for(path))
    return path, fmt


def check_not_empty(path: str | Path) -> None:
    """A file of 0 bytes is named as such (the parsers said "No columns to parse from file")."""
    if Path(path).stat().st_size == 0:
        raise DataValidationError(f"{path}: the file is empty (0 bytes)")


def check_utf8(path: Path, opener) -> None:
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


def csv_options(fmt: str, sep: str | None = None) -> dict:
    """How every CSV/TSV reader here splits a file (pandas ``read_csv``, ``datasets``' csv builder):
    texts kept as written ("NA" is a text, not a missing value); TSVs unquoted, as GLUE/LM-BFF TSVs
    contain bare quotes. ``sep``: a split's ``read_options.sep`` (";" for Excel's CSV in many locales)."""
    return {"sep": sep or ("\t" if fmt == "tsv" else ","),
            "quoting": csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL, "keep_default_na": False}


def first_row(path: Path, fmt: str, sep: str | None = None) -> list[str]:
    """The header (or first row) of a CSV/TSV file, split as ``csv_options`` splits it."""
    opts = csv_options(fmt, sep)
    # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name, as
    # pandas (and so `datasets`) read it; with it the names would not match the columns read
    with opener_for(path)(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh, delimiter=opts["sep"], quoting=opts["quoting"]), None) or []


SNIFF_LINES = 1000  # lines a separator is judged on: enough to meet a text with a comma, cheap on any file


def sniff_separator(path: str | Path) -> str | None:
    """The separator of a .csv: ',', ';' (Excel's CSV in many locales), a tab or '|'; None when no choice
    is safe. A separator can be taken when it splits the first line and every later line into two or more
    fields (a line with more than the first is an unquoted separator in a text, reported by the read,
    naming the line; one with fewer has empty trailing fields); where several can, the one giving the
    first line more fields, a tie going to the comma. A one-column file of texts with a ';' in some of
    them stays unsplit. (``csv.Sniffer`` guesses from character frequencies and would take a ';'
    inside such texts for a separator.)"""
    path = Path(path)
    try:
        with opener_for(path)(path, "rt", encoding="utf-8-sig", newline="") as fh:
            lines = [line for _, line in zip(range(SNIFF_LINES), fh)]
        fields = {}
        for sep in (",", ";", "\t", "|"):
            counts = [len(row) for row in csv.reader(lines, delimiter=sep) if row]
            if counts and min(counts) >= 2:
                fields[sep] = counts[0]
    except (UnicodeDecodeError, csv.Error, OSError, EOFError):  # the reader that follows reports it, by line
        return None
    return max(fields, key=lambda sep: (fields[sep], sep == ","), default=None)


def csv_separator(path: str | Path, configured: str | None = None, header: bool = True) -> str | None:
    """The ``sep`` to read a .csv with (None: the comma): the configured one for a headerless layout (its
    texts may hold any separator, so the file cannot tell), else the file's own where sniffing decides,
    else the configured one."""
    if not header:
        return configured
    found = sniff_separator(path)
    if found is None:
        return configured
    return None if found == "," else found


def check_field_counts(path: Path, fmt: str, sep: str | None = None) -> None:
    """A row with more fields than the first line (an unquoted separator inside a text) is an error
    naming its line: pandas would silently take the extra field as the row index or drop it."""
    opts = csv_options(fmt, sep)
    sep = opts["sep"]
    with opener_for(path)(path, "rt", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep, quoting=opts["quoting"])
        first = next(reader, None) or []
        for row in reader:
            if len(row) > len(first):
                raise DataValidationError(
                    f"{path}: line {reader.line_num} has {len(row)} fields where the first line has {len(first)}: "
                    f"quote texts that contain {sep!r}" + (" (or use .tsv)" if sep == "," else "")
                )


def record_lines(path: Path, fmt: str, sep: str | None = None, header: bool = True,
                 empty_rows: bool = True) -> list[int]:
    """The file line each CSV/TSV record starts on, as an editor counts, for the records pandas keeps: blank
    (whitespace-only) lines are skipped by pandas, and a quoted text may span lines, so the row index plus
    the header is not the line (an empty text after a blank line was reported one line too early).
    ``empty_rows`` False: without the rows the readers drop after pandas (``drop_empty_rows``)."""
    return [start for start, blank, empty in _csv_records(path, fmt, sep, header) if not blank and (empty_rows or not empty)]


def blank_lines(path: Path, fmt: str, sep: str | None = None, header: bool = True) -> list[int]:
    """The lines read as no row: blank JSON Lines, CSV/TSV lines pandas skips (empty, or white space other
    than the separator alone), and rows of empty fields alone, which the readers drop (``drop_empty_rows``)."""
    if fmt == "jsonl":
        with opener_for(path)(path, "rt", encoding="utf-8-sig") as fh:
            return [n for n, line in enumerate(fh, 1) if not line.strip()]
    return [start for start, blank, empty in _csv_records(path, fmt, sep, header) if blank or empty]


def drop_empty_rows(df, keep: Sequence[str] = ()):
    """A CSV/TSV read without its rows of empty fields alone (``,,``: Excel's empty row at the end of a sheet),
    skipped as pandas skips a blank line. One column: a quoted "" is an empty text, refused. ``keep``: columns
    added to the read (its lines), not the file's."""
    columns = [c for c in df.columns if c not in keep]
    empty = None
    for column in columns if len(columns) > 1 else ():
        here = df[column].isna() | df[column].astype(str).str.strip().eq("")
        empty = here if empty is None else empty & here
        if not empty.any():  # the first column mostly decides: the other ones are not read
            return df
    return df if empty is None else df[~empty].reset_index(drop=True)


def _csv_records(path: Path, fmt: str, sep: str | None, header: bool):
    """(first file line, is blank, is a row of empty fields) of every CSV/TSV record after the header. Empty
    fields: every one empty or white space, in a file of two or more columns (the first line's; a short row
    lacks its last ones, empty as pandas reads them)."""
    opts = csv_options(fmt, sep)
    spaces = " \t\f\v".replace(opts["sep"], "")  # a line of these alone is blank to pandas (a quoted "" is not)
    end, last, width = 0, [""], 0

    def remembered(fh):
        for line in fh:
            last[0] = line
            yield line

    with opener_for(path)(path, "rt", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(remembered(fh), delimiter=opts["sep"], quoting=opts["quoting"])
        for n, row in enumerate(reader):
            start, end = end + 1, reader.line_num
            blank = start == end and not last[0].rstrip("\r\n").strip(spaces)
            width = width or (0 if blank else len(row))
            if n > 0 or not header:
                yield start, blank, not blank and width > 1 and not any(f.strip() for f in row)


def iter_jsonl(path: Path):
    """(file line, record) of a JSON Lines file; a broken record is an error naming its line."""
    with opener_for(path)(path, "rt", encoding="utf-8-sig") as fh:  # a leading byte-order mark, as `datasets` skips it
        for n, line in enumerate(fh, 1):
            if line.strip():
                yield n, json_record(line, path, n)


def json_record(line: str | bytes, path: Path, n: int) -> dict:
    """Line ``n`` of a JSON Lines file as a record; a broken one is an error naming the line."""
    try:
        row = json.loads(line)
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{path}: line {n}: not UTF-8 ({exc.reason}); save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataValidationError(f"{path}: line {n}, column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise DataValidationError(f"{path}: line {n}: expected a JSON object, got {type(row).__name__}")
    return row


MAX_SHOWN = 10  # bad rows named in one error; the rest are counted


def first_line(fmt: str, header: bool = True) -> int | None:
    """The file line of the first record (CSV/TSV after a header, JSON Lines); None for JSON and
    Parquet, whose rows are named by record number."""
    return {"csv": 2 if header else 1, "tsv": 2 if header else 1, "jsonl": 1}.get(fmt)


def row_place(first: int | None, index: int) -> str:
    """Where the ``index``-th (0-based) record sits, as an editor shows it."""
    return f"line {first + index}" if first else f"record {index + 1}"


def empty_text(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


class BadRows:
    """A file's bad rows, collected so that one error names them all and a user fixes the file in one go."""

    def __init__(self, path):
        self.path, self.shown, self.count, self.notes = path, [], 0, {}

    def add(self, at: str, problem: str, note: str | None = None) -> None:
        """``note``: said once at the end, however many rows share it (the labels a file may use)."""
        self.count += 1
        if len(self.shown) < MAX_SHOWN:
            self.shown.append(f"{at}: {problem}")
        if note:
            self.notes[note] = None

    def raise_any(self) -> None:
        if self.count:
            more = f" (and {self.count - MAX_SHOWN} more)" if self.count > MAX_SHOWN else ""
            notes = "".join(f"; {n}" for n in self.notes)
            raise DataValidationError(f"{self.path}: {self.count} bad row(s): {'; '.join(self.shown)}{more}{notes}")


def check_texts(path, batches: Iterable[tuple[int, Mapping[str, Sequence]]], columns: Mapping[str, str],
                first: int | None, csv_layout: tuple[str, str | None, bool] | None = None) -> None:
    """Every empty text reported at once. ``batches``: (index of the batch's first row, {column:
    values}); ``columns``: batch column -> the name the user knows it by. ``csv_layout`` (format, sep,
    header) of the file; in a CSV/TSV the rows found are placed by ``record_lines`` (blank lines, texts over several
    lines), read only when there is something to report: the file may be large."""
    found: list[tuple[int, str]] = []  # the first MAX_SHOWN, placed once the file is read
    count = 0
    for start, batch in batches:
        for column, name in columns.items():
            for i, text in enumerate(batch[column]):
                if empty_text(text):
                    count += 1
                    if len(found) < MAX_SHOWN:
                        found.append((start + i, f"empty {name!r}"))
    in_csv = found and csv_layout and csv_layout[0] in ("csv", "tsv")
    lines = record_lines(Path(path), *csv_layout, empty_rows=False) if in_csv else []  # among the rows kept: empty ones dropped
    bad = BadRows(path)
    for index, problem in found:
        bad.add(f"line {lines[index]}" if index < len(lines) else row_place(first, index), problem)
    bad.count = count
    bad.raise_any()
