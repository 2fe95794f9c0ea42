"""Unlabeled text at scale, through HF ``datasets``.

The labeled splits hold tens of rows and go through ``labeled.load_examples``; the unlabeled split may
hold millions, so it is read by ``datasets`` into a memory-mapped Arrow table (on disk, not in
RAM), checked in batches, and written as a normalised Parquet copy (columns text_a, text_b) that
the shards are cut from batch by batch. Nothing here holds the whole split in Python objects.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from prompt_models.examples import ExamplesHasher

from .atomic import temp_beside
from .labeled import read_table
from .sources import (
    DataSpec, DataValidationError, blank_lines, check_field_counts, check_texts, checked_source, csv_options, first_line, first_row,
    iter_jsonl, record_lines,
)

BATCH = 50_000


@dataclass(frozen=True)
class UnlabeledCopy:
    """The checked, normalised unlabeled split: a Parquet file with text_a (and text_b)."""

    path: str
    digest: str
    n: int


def open_unlabeled(spec: DataSpec, cache_dir: str | Path):
    """The split as a memory-mapped ``datasets.Dataset`` with columns text_a[, text_b], checked."""
    import datasets

    path, fmt = checked_source(spec)
    if fmt == "json":  # one JSON document is parsed whole anyway (and may be the LM-BFF mapping layout)
        ds = datasets.Dataset.from_pandas(read_table(DataSpec(**{**spec.__dict__, "limit": None, "seed": None})),
                                          preserve_index=False)
    else:
        ds = _load(path, fmt, spec, str(cache_dir))
    if fmt in ("csv", "tsv"):
        ds = _without_empty_rows(ds)
    columns = {spec.text_a: "text_a", **({spec.text_b: "text_b"} if spec.text_b else {})}
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        present = [c for c in ds.column_names if not c.startswith("_")]
        raise DataValidationError(f"{spec.path}: missing column(s) {missing}; the file has {present}")
    ds = ds.select_columns(list(columns)).rename_columns(columns)
    if len(ds) == 0:
        raise DataValidationError(f"{spec.path}: no rows")
    # JSONL: the record's line if the file has no blank lines
    check_texts(spec.path, _batches(ds), {"text_a": spec.text_a, **({"text_b": spec.text_b} if spec.text_b else {})},
                first_line(fmt, spec.header), (fmt, spec.sep, spec.header))
    if spec.seed is not None:
        ds = ds.shuffle(seed=spec.seed)
    if spec.limit is not None:
        ds = ds.select(range(min(spec.limit, len(ds))))
    return ds


def skipped_lines(spec: DataSpec) -> str | None:
    """A line naming the blank lines and rows of empty fields of a CSV/TSV/JSONL split (no row to the reader), or None:
    they are skipped rather than refused, and said so, not lost silently."""
    path, fmt = checked_source(spec)
    blanks = blank_lines(path, fmt, spec.sep, spec.header) if fmt in ("csv", "tsv", "jsonl") else []
    if not blanks:
        return None
    at = ", ".join(map(str, blanks[:5])) + (", ..." if len(blanks) > 5 else "")
    return f"{spec.path}: {len(blanks)} empty line(s) skipped, no text there (line {at})"


def _load(path: Path, fmt: str, spec: DataSpec, cache_dir: str):
    import datasets

    kwargs: dict = {}
    if fmt in ("csv", "tsv"):
        kwargs = csv_options(fmt, spec.sep)
        check_field_counts(path, fmt, spec.sep)
        names = first_row(path, fmt, spec.sep)
        if not names:
            raise DataValidationError(f"{path}: no rows")
        if not spec.header:
            names = [str(i) for i in range(len(names))]
            kwargs.update(header=None, column_names=names)
        else:  # the names the labeled splits' pandas read gives: an empty one (Excel's trailing comma) is
            # "Unnamed: 2", a repeated one "text.1"; the features below must name the columns the read makes
            names = list(pd.read_csv(path, nrows=0, **{**kwargs, **spec.read_options}).columns)
            kwargs.update(header=0, column_names=names)
        # every column read as text, as written ("01" stays "01", not the number 1)
        kwargs["features"] = datasets.Features({n: datasets.Value("string") for n in names})
        kwargs.update(spec.read_options)
    builder = {"csv": "csv", "tsv": "csv", "jsonl": "json", "parquet": "parquet"}.get(fmt)
    if builder is None:
        raise DataValidationError(f"{path}: unknown format {fmt!r}")
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache_dir, **kwargs)
    except Exception as exc:
        if fmt == "jsonl":
            _locate_jsonl_error(path)  # raises with the file line, if it can find one
        if fmt in ("csv", "tsv") and not record_lines(path, fmt, spec.sep, spec.header):
            # `datasets` says 'Instruction "train" corresponds to no data!' of a file with a header line only
            raise DataValidationError(f"{path}: no rows (a header line only)") from None
        while exc.__cause__ is not None:  # `datasets` wraps the reader's error in "An error occurred while ..."
            exc = exc.__cause__
        raise DataValidationError(f"{path}: could not read as {fmt}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return ds


def _without_empty_rows(ds):
    """``sources.drop_empty_rows`` on the Arrow table: tested in Arrow a column at a time, not row by row."""
    import pyarrow.compute as pc

    empty = None
    for name in ds.column_names if len(ds.column_names) > 1 else ():
        column = ds.data.column(name)
        here = pc.fill_null(pc.or_(pc.equal(pc.utf8_length(column), 0), pc.utf8_is_space(column)), True)
        empty = here if empty is None else pc.and_(empty, here)
        if not pc.any(empty).as_py():  # the first column mostly decides
            return ds
    # int64: datasets finds a contiguous selection's start by arithmetic that uint64 turns into floats
    return ds if empty is None else ds.select(pc.indices_nonzero(pc.invert(empty)).cast("int64").to_numpy())


def _locate_jsonl_error(path: Path) -> None:
    for _ in iter_jsonl(path):  # raises at the first broken record, naming its line
        pass


def _batches(ds) -> Iterator[tuple[int, dict]]:
    for start in range(0, len(ds), BATCH):
        yield start, ds[start : start + BATCH]


def write_copy(ds, folder: Path) -> UnlabeledCopy:
    """The checked split as ``folder/unlabeled-<digest>.parquet``, written batch by batch, atomically."""
    hasher = ExamplesHasher()  # the digest of these texts as unlabeled examples
    schema = pa.schema([("text_a", pa.string()), ("text_b", pa.string())])
    with temp_beside(folder / "unlabeled.parquet") as tmp:  # its name is known only at the end
        with pq.ParquetWriter(tmp, schema) as writer:
            for _, batch in _batches(ds):
                a = [str(t) for t in batch["text_a"]]
                b = [None if t is None else str(t) for t in batch["text_b"]] if "text_b" in batch else [None] * len(a)
                for x, y in zip(a, b):
                    hasher.add(x, y)
                writer.write_table(pa.table({"text_a": a, "text_b": b}, schema=schema))
        digest = hasher.hexdigest()
        path = folder / f"unlabeled-{digest[:16]}.parquet"
        os.replace(tmp, path)
    return UnlabeledCopy(str(path), digest, len(ds))


@contextlib.contextmanager
def scratch_cache():
    """Arrow cache for a read that must leave nothing behind (``pet validate``)."""
    with tempfile.TemporaryDirectory(prefix="pet-validate-") as folder:
        yield folder
