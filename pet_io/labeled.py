"""The labeled splits (train, dev, test): tens to thousands of rows, read whole with pandas and
checked row by row: required columns, non-empty texts, known labels, every problem at once.

Files may be CSV, TSV, JSON Lines, JSON (a list of records or the LM-BFF ``{"idx": {...}}``
mapping) or Parquet, optionally gzipped.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from prompt_models.examples import InputExample

from .sources import (
    LINE, BadRows, DataSpec, DataValidationError, check_field_counts, checked_source, csv_options, drop_empty_rows, empty_text,
    iter_jsonl, opener_for, record_lines, row_place,
)


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
            check_field_counts(path, fmt, spec.sep)
            opts = {**csv_options(fmt, spec.sep), "dtype": str, **spec.read_options}
            df = pd.read_csv(path, header=0 if spec.header else None, **opts)
            df.columns = [str(c) for c in df.columns]
            lines = record_lines(path, fmt, spec.sep, spec.header)
            # read_options may change how pandas splits the file: then one row per line after the header
            df[LINE] = lines if len(lines) == len(df) else range(2 if spec.header else 1, len(df) + (2 if spec.header else 1))
            df = drop_empty_rows(df, keep=[LINE])
        elif fmt == "jsonl":
            df = _read_jsonl(path)
        elif fmt == "json":
            with opener(path, "rt", encoding="utf-8-sig") as fh:  # a leading BOM is not JSON
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
    bad = BadRows(spec.path)
    known = set(labels) if labels is not None else None
    examples: list[InputExample] = []
    has_label = bool(spec.label) and spec.label in df.columns
    for i, row in enumerate(df.to_dict("records")):
        # file line (CSV/TSV/JSONL), else the record's 1-based position (JSON, Parquet)
        at = f"line {row[LINE]}" if LINE in row else row_place(None, i)
        text_a = _as_text(row[spec.text_a])
        text_b = _as_text(row[spec.text_b]) if spec.text_b else None
        if empty_text(text_a):
            bad.add(at, f"empty {spec.text_a!r}")
            continue
        if spec.text_b and empty_text(text_b):
            bad.add(at, f"empty {spec.text_b!r}")
            continue
        label = _as_text(row[spec.label]) if has_label else None
        if label is not None:
            label = label.strip()
        if require_labels and (label is None or label == ""):
            bad.add(at, "empty label", "every row of a labeled split needs its label; texts without one belong in "
                    "the unlabeled file (pet init --unlabeled, or data.unlabeled)")
            continue
        if known is not None and label not in (None, "") and label not in known:
            bad.add(at, f"unknown label {label!r}", f"the labels are {sorted(known)}")
            continue
        examples.append(InputExample(text_a=text_a, text_b=text_b, label=label or None, guid=f"{i}"))
    bad.raise_any()
    return examples
