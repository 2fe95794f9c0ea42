"""The record every layer passes around (one text or text pair, maybe a label) and its content digests."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class InputExample:
    text_a: str
    text_b: str | None = None
    label: str | None = None
    guid: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# the most examples of each label read to estimate one number (a template's rank, a pattern model's ensemble
# weight): 25,000 labeled reviews (a new-user trial's IMDB) would otherwise all be scored, once per template or
# model; the 8-64 per label the pipeline was measured with are all read as before
MAX_SCORED_PER_LABEL = 64


def at_most_per_label(examples: Sequence[InputExample], per_label: int, seed: int = 0) -> list[InputExample]:
    """``examples`` as they are, or a seeded sample of ``per_label`` of each label where a label has more."""
    by_label: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_label.setdefault(ex.label, []).append(i)
    if all(len(idx) <= per_label for idx in by_label.values()):
        return list(examples)
    rng = random.Random(seed)
    keep = {i for lab in sorted(by_label) for i in (by_label[lab] if len(by_label[lab]) <= per_label
                                                     else rng.sample(by_label[lab], per_label))}
    return [ex for i, ex in enumerate(examples) if i in keep]


def example_digest(example: InputExample) -> str:
    """Content digest of one example's texts (not its label or position)."""
    h = hashlib.sha256()
    h.update((example.text_a or "").encode())
    h.update(b"\x00")
    h.update((example.text_b or "").encode())
    return h.hexdigest()[:32]


def gold_indices(examples: Iterable[InputExample], labels: Sequence[str]) -> np.ndarray:
    """Each example's label as its position in ``labels`` (the order of the logits' columns)."""
    index = {label: i for i, label in enumerate(labels)}
    try:
        return np.array([index[ex.label] for ex in examples], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"unknown label {exc.args[0]!r}; known: {list(labels)}") from None


class ExamplesHasher:
    """The content digest of a sequence of examples, fed one at a time (a file bigger than memory)."""

    def __init__(self):
        self.h = hashlib.sha256()

    def add(self, text_a: str, text_b: str | None = None, label: str | None = None) -> None:
        self.h.update(json.dumps([text_a, text_b, label]).encode())
        self.h.update(b"\n")

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def examples_digest(examples: Iterable[InputExample]) -> str:
    hasher = ExamplesHasher()
    for ex in examples:
        hasher.add(ex.text_a, ex.text_b, ex.label)
    return hasher.hexdigest()
