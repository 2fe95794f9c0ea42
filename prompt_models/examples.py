"""The record every layer passes around (one text or text pair, maybe a label) and its content digests."""
from __future__ import annotations

import hashlib
import json
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
