"""The typed records tasks hand to each other and to the flows (JSON-able with ``dataclasses.asdict``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .caching import read_done


@dataclass(frozen=True)
class Shard:
    """A content-addressed slice of the unlabeled copy: ``n`` texts in a Parquet file."""

    path: str
    digest: str
    n: int


@dataclass(frozen=True)
class LabeledShard:
    """One shard's soft labels from one ensemble (``labels.parquet``: texts, logits, probs)."""

    path: str
    digest: str
    n: int
    cached: bool = False

    @classmethod
    def from_done(cls, folder: Path, cached: bool = True) -> "LabeledShard":
        info = read_done(folder)
        return cls(info["path"], info["digest"], info["n"], cached)


@dataclass(frozen=True)
class ModelLabeling:
    """What one pattern model did in a labeling stage (model-major: loaded once, or not at all)."""

    model_key: str
    shards_computed: int
    shards_cached: int


@dataclass(frozen=True)
class ClassifierRef:
    """A distilled classifier in the work folder, keyed by everything that produced it."""

    key: str
    path: str
    run_id: str
    n_train: int
    cached: bool = False


@dataclass(frozen=True)
class Registration:
    """The registry version a classifier became, and the alias it got."""

    name: str
    version: str
    alias: str
    model_uri: str
    reused: bool
    promoted: bool
    promotion: str
