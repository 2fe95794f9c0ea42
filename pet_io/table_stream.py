"""Tables read and written in chunks (CSV, TSV, JSON Lines, Parquet), for files larger than memory.

Framework free, like ``labeled``: a problem is a ``DataValidationError`` naming the file (and line).
The output appears only complete: chunks go to a temporary file renamed at the end.
"""
from __future__ import annotations

import contextlib
import gzip
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from .atomic import atomic_path
from . import sources
from .sources import DataValidationError, check_field_counts, csv_options, detect_format, first_line, json_record

STREAM_FORMATS = ("csv", "tsv", "jsonl", "parquet")


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    fmt = {".pq": "parquet"}.get(suffix, suffix.lstrip("."))
    if fmt not in STREAM_FORMATS:
        raise DataValidationError(f"{path}: the output suffix must be one of {['.' + f for f in STREAM_FORMATS]}")
    return fmt


def input_format(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"input file not found: {path}")
    try:
        fmt = detect_format(path)
    except DataValidationError:  # its message names a config key; `pet predict` reads the name's suffix only
        suffixes = [s for s, f in sources.SUFFIX_FORMATS.items() if f in STREAM_FORMATS]
        raise DataValidationError(f"{path}: cannot tell the file format from its name; rename it with one of the "
                                  f"suffixes {suffixes} (optionally .gz)") from None
    if fmt not in STREAM_FORMATS:
        raise DataValidationError(f"{path}: {fmt} cannot be read in chunks; use one of {list(STREAM_FORMATS)} (JSON Lines for JSON)")
    return fmt


def _open(path: Path):
    raw = open(path, "rb")
    return raw, (gzip.GzipFile(fileobj=raw) if path.suffix.lower() == ".gz" else raw)


def _csv_options(fmt: str, sep: str | None = None) -> dict:
    # strings kept verbatim (ids with leading zeros, "NA" texts): every input column goes back out as read
    return {**csv_options(fmt, sep), "dtype": str, "encoding": "utf-8"}


def read_columns(path: Path, fmt: str, sep: str | None = None, header: bool = True) -> list[str]:
    """The column names, from the header (CSV, TSV; ``sep``: ``sources.csv_separator``'s; without a
    header 0, 1, ... as the config names them), the first record (JSONL) or the schema (Parquet)."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        raw, fh = _open(path)
        with raw:
            if fmt == "jsonl":
                return next((list(json_record(line, path, n)) for n, line in enumerate(fh, 1) if line.strip()), [])
            if not header:
                return [str(i) for i in range(len(pd.read_csv(fh, nrows=1, header=None, **_csv_options(fmt, sep)).columns))]
            return [str(c) for c in pd.read_csv(fh, nrows=0, **_csv_options(fmt, sep)).columns]
    except DataValidationError:
        raise
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parser errors are ValueErrors
        raise DataValidationError(f"{path}: could not read as {fmt}: {exc}") from None


def size_of(path: Path, fmt: str) -> tuple[int, str]:
    """What a progress bar counts: rows for Parquet (in its footer), else bytes of the file."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows, "row"
    return path.stat().st_size, "B"


def _records_frame(records: list[dict]) -> pd.DataFrame:
    # values as parsed, missing keys as None: 4 stays 4 (not 4.0 beside a NaN) in every output format
    df = pd.DataFrame(records, dtype=object)
    return df.where(df.notna(), None)


def iter_chunks(path: Path, fmt: str, rows: int, advance: Callable[[int], None] = lambda n: None,
                sep: str | None = None, header: bool = True) -> Iterator[pd.DataFrame]:
    """The table ``rows`` at a time; ``advance`` gets what ``size_of`` counts, as it is read."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            advance(batch.num_rows)
            yield batch.to_pandas()
        return
    raw, fh = _open(path)
    with raw:
        seen = 0

        def progressed() -> None:
            nonlocal seen
            advance(raw.tell() - seen)
            seen = raw.tell()

        if fmt == "jsonl":
            buf: list[dict] = []
            for n, line in enumerate(fh, 1):
                if line.strip():
                    buf.append(json_record(line, path, n))
                if len(buf) == rows:
                    progressed()
                    yield _records_frame(buf)
                    buf = []
            if buf:
                progressed()
                yield _records_frame(buf)
            return
        check_field_counts(path, fmt, sep)
        try:
            for chunk in pd.read_csv(fh, chunksize=rows, header=0 if header else None, **_csv_options(fmt, sep)):
                progressed()
                chunk.columns = [str(c) for c in chunk.columns]  # headerless: 0, 1, ... as the config names them
                yield sources.drop_empty_rows(chunk)
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise DataValidationError(f"{path}: could not read as {fmt}: {exc}") from None


class ChunkWriter:
    """Appends chunks to one file in ``fmt`` (Parquet: a row group per chunk)."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self.fh, self.pq_writer = path, fmt, None, None
        self.columns: list | None = None  # the first chunk's: CSV, TSV and Parquet have one header
        self.rows = 0

    @property
    def written(self) -> bool:
        return self.columns is not None

    def write(self, df: pd.DataFrame) -> None:
        if self.columns is None:
            self.columns = list(df.columns)
        elif list(df.columns) != self.columns and self.fmt != "jsonl":
            # JSON Lines records need not share keys: a missing one is left empty, a new one cannot be placed
            extra = [c for c in df.columns if c not in self.columns]
            if extra:
                raise DataValidationError(f"records after row {self.rows} bring new key(s) {extra}: write JSON Lines, "
                                          "or give every record the same keys")
            df = df.reindex(columns=self.columns)
        self.rows += len(df)
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self.pq_writer is None:
                self.pq_writer = pq.ParquetWriter(self.path, table.schema)
            elif table.schema != self.pq_writer.schema:
                try:  # e.g. a JSONL column that was all null in the first chunk
                    table = table.cast(self.pq_writer.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                    raise DataValidationError(f"column types change between chunks ({exc}); write CSV or JSONL") from None
            self.pq_writer.write_table(table)
            return
        first = self.fh is None
        if first:
            self.fh = open(self.path, "w", encoding="utf-8", newline="")
        if self.fmt == "jsonl":
            text = df.to_json(orient="records", lines=True, force_ascii=False)
            self.fh.write(text if not text or text.endswith("\n") else text + "\n")
        else:
            df.to_csv(self.fh, index=False, header=first, sep="\t" if self.fmt == "tsv" else ",")

    def close(self) -> None:
        if self.pq_writer is not None:
            self.pq_writer.close()
            self.pq_writer = None
        if self.fh is not None:
            self.fh.close()


@contextlib.contextmanager
def atomic_writer(out: str | Path, fmt: str) -> Iterator[ChunkWriter]:
    """A ChunkWriter on a temporary file next to ``out``, renamed to ``out`` only if the block succeeds."""
    with atomic_path(out) as tmp:
        writer = ChunkWriter(tmp, fmt)
        try:
            yield writer
        finally:
            writer.close()


def check_texts(path: Path, fmt: str, columns: list[str], rows: int = 4096, sep: str | None = None,
                header: bool = True) -> int:
    """Every row with an empty text in ``columns`` reported at once, by file line as the training
    splits are (record number for Parquet); read a chunk at a time. Returns the number of rows."""
    read = [0]

    def batches() -> Iterator[tuple[int, dict]]:
        for chunk in iter_chunks(path, fmt, rows, sep=sep, header=header):
            # a JSON Lines chunk where no record has the key lacks the column: every text is missing
            yield read[0], {c: chunk[c] if c in chunk.columns else [None] * len(chunk) for c in columns}
            read[0] += len(chunk)

    sources.check_texts(path, batches(), {c: c for c in columns}, first_line(fmt, header),
                        (fmt, sep, header))
    return read[0]
