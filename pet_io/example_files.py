"""Normalised copies of examples on disk: JSON Lines (labeled splits, iPET additions) and the Parquet
copies and shards of the unlabeled split (columns text_a, text_b), read whole or a batch at a time."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
import pyarrow.parquet as pq

from prompt_models.examples import InputExample

from .atomic import atomic_path


def save_examples(examples: Sequence[InputExample], path: str | Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex.to_dict()) + "\n")
    return Path(path)


def read_examples(path: str | Path) -> list[InputExample]:
    """The examples of a normalised copy: JSON Lines, or Parquet (unlabeled copies and shards)."""
    if str(path).endswith(".parquet"):
        cols = pq.read_table(path).to_pydict()
        texts_b = cols.get("text_b") or [None] * len(cols["text_a"])
        return [InputExample(a, b) for a, b in zip(cols["text_a"], texts_b)]
    with open(path, encoding="utf-8") as fh:
        return [InputExample(**json.loads(line)) for line in fh if line.strip()]


def examples_to_frame(examples: Sequence[InputExample]) -> pd.DataFrame:
    return pd.DataFrame([ex.to_dict() for ex in examples])


def iter_examples(path: str | Path, batch_size: int = 10_000) -> Iterator[InputExample]:
    """The examples of a normalised copy or shard; Parquet ones are read a batch at a time."""
    if not str(path).endswith(".parquet"):
        yield from read_examples(path)
        return
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        cols = batch.to_pydict()
        texts_b = cols.get("text_b") or [None] * len(cols["text_a"])
        for a, b in zip(cols["text_a"], texts_b):
            yield InputExample(a, b)
