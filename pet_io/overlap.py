"""Texts of the evaluation splits that also occur in the splits a run learns from.

A dev or test text that is also a training example, or in the unlabeled pool the ensemble soft-labels
and the student is distilled on, makes that split's accuracy optimistic: the run has seen it (with its
label, or with the ensemble's). Nothing is refused (a transductive run may mean it); the counts are
reported so that a user sees it before trusting the numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SEP = "\x1f"  # joins text_a and text_b of a pair (a unit separator: not in ordinary text)


def text_key(text_a: str, text_b: str | None = None) -> str:
    """Case and runs of white space do not make two texts different."""
    key = " ".join(str(text_a).split()).casefold()
    return key if text_b is None else key + SEP + " ".join(str(text_b).split()).casefold()


def _keys_of_table(table: pa.Table) -> pa.Array:
    # the same normalisation as text_key, vectorised: the pool may hold millions of rows
    def norm(col):
        col = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.cast(col, pa.string()), r"\s+", " "))
        return pc.utf8_lower(col)  # casefold for all but a few scripts (ß): a missed match only undercounts

    keys = norm(table.column("text_a"))
    if "text_b" in table.column_names:  # the copy always has it: null where a row has one text
        b = table.column("text_b")
        keys = pc.if_else(pc.is_null(b), keys, pc.binary_join_element_wise(keys, norm(b), SEP))
    return keys


@dataclass(frozen=True)
class Overlap:
    split: str  # "dev" | "test"
    other: str  # "train", or the pool's name ("unlabeled", "texts soft-labeled by earlier runs")
    found: int  # texts of ``split`` that occur in ``other``
    of: int  # texts in ``split``

    def line(self) -> str:
        return f"{self.found} of {self.of} distinct {self.split} texts are also in {self.other}"


def found_in_parquet(keys: set[str], path: str, batch_rows: int = 50_000) -> set[str]:
    """The ``keys`` that occur among the rows of a normalised unlabeled copy (text_a[, text_b])."""
    if not keys:
        return set()
    wanted, found = pa.array(sorted(keys), pa.string()), set()
    with pq.ParquetFile(path) as pf:
        columns = [c for c in ("text_a", "text_b") if c in pf.schema_arrow.names]
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            batch_keys = _keys_of_table(pa.Table.from_batches([batch]))
            found.update(pc.unique(pc.filter(batch_keys, pc.is_in(batch_keys, value_set=wanted))).to_pylist())
    return found


def overlaps(evaluation: dict[str, Sequence], train: Sequence, unlabeled_parquet: str | Sequence[str] | None,
             pool_name: str = "unlabeled") -> list[Overlap]:
    """For each evaluation split (examples with ``text_a``/``text_b``), how many of its distinct texts
    are training texts, and how many are in the unlabeled copy (or copies, named ``pool_name``); only the
    non-zero counts."""
    def keys(examples: Iterable) -> set[str]:
        return {text_key(ex.text_a, ex.text_b) for ex in examples}

    pools = [unlabeled_parquet] if isinstance(unlabeled_parquet, str) else list(unlabeled_parquet or [])
    train_keys = keys(train)
    out = []
    for split, examples in evaluation.items():
        mine = keys(examples)
        in_pool: set[str] = set()
        for path in pools:
            in_pool |= found_in_parquet(mine - in_pool, path)
        counts = {"train": len(mine & train_keys), pool_name: len(in_pool)}
        out += [Overlap(split, other, n, len(mine)) for other, n in counts.items() if n]
    return out
