"""One entry point for reading the splits of a pipeline, labeled and unlabeled alike.

The labeled splits (tens of rows) come back as checked lists of examples (``labeled``); the
unlabeled split (maybe millions of rows) as a checked, memory-mapped ``datasets.Dataset``
(``unlabeled``) whose Arrow cache goes to ``arrow_cache`` or, when none is given, to a scratch
folder removed on return: then nothing is written anywhere (``pet validate``).
"""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

from .labeled import load_examples
from .sources import DataSpec
from .unlabeled import open_unlabeled, scratch_cache

UNLABELED = "unlabeled"


def read_splits(specs: Mapping[str, DataSpec | None], labels: Sequence[str],
                arrow_cache: str | Path | None = None) -> dict[str, tuple]:
    """``{split: (spec, examples or Dataset)}`` for every given split, each read and checked
    (row-level errors name the file and line)."""
    out = {}
    with contextlib.ExitStack() as stack:
        cache = arrow_cache or stack.enter_context(scratch_cache())
        for split, spec in specs.items():
            if spec is None:
                continue
            if split == UNLABELED:
                out[split] = (dataclasses.replace(spec, label=None), open_unlabeled(spec, cache))
            else:
                out[split] = (spec, load_examples(spec, labels, require_labels=True))
    return out
