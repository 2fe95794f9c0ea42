"""The record every layer passes around (one text or text pair, maybe a label) and its content digests."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Iterable


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


def examples_digest(examples: Iterable[InputExample]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps([ex.text_a, ex.text_b, ex.label]).encode())
        h.update(b"\n")
    return h.hexdigest()
