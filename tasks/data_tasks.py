"""Prefect tasks of the data stage: read and check every split, store normalised copies, log them as MLflow inputs."""
from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from prompt_models.arrow_data import open_unlabeled, scratch_cache, write_copy
from prompt_models.config import PipelineConfig
from prompt_models.data import (
    examples_digest,
    load_examples,
    read_examples,
    save_examples,
)

from . import tracking
from .records import SplitFile, Splits

SPLITS = ("train", "dev", "test", "unlabeled")


def logger():
    try:
        return get_run_logger()
    except Exception:  # called outside a flow/task run (unit tests, notebooks)
        import logging

        return logging.getLogger("pet")

def read_splits(cfg: PipelineConfig, arrow_cache: str | Path | None = None) -> dict[str, tuple]:
    """Every configured split read and checked (row-level errors name the file and line).

    The labeled splits come back as lists of examples; the unlabeled one as a memory-mapped
    ``datasets.Dataset`` (``arrow_data``), whose Arrow cache goes to ``arrow_cache`` or, when none
    is given, to a scratch folder removed on return: then nothing is written anywhere.
    """
    out = {}
    with contextlib.ExitStack() as stack:
        cache = arrow_cache or stack.enter_context(scratch_cache())
        for split in SPLITS:
            spec = cfg.spec(split)
            if spec is None:
                continue
            if split == "unlabeled":
                out[split] = (dataclasses.replace(spec, label=None), open_unlabeled(spec, cache))
            else:
                out[split] = (spec, load_examples(spec, cfg.labels, require_labels=True))
    return out


@task(name="load-and-validate", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def load_and_validate(cfg: PipelineConfig) -> Splits:
    """Read every configured split, check it, and store a normalised copy named by its digest."""
    out = {}
    labels_seen: set = set()
    folder = cfg.work_path / "data"
    for split, (spec, examples) in read_splits(cfg, cfg.work_path / "arrow_cache").items():
        if split == "unlabeled":
            copy = write_copy(examples, folder)  # Parquet, written batch by batch
            out[split] = SplitFile(copy.path, copy.digest, copy.n, spec.path)
            continue
        d = examples_digest(examples)
        path = cfg.work_path / "data" / f"{split}-{d[:16]}.jsonl"
        if not path.exists():
            save_examples(examples, path)
        out[split] = SplitFile(str(path), d, len(examples), spec.path)
        if split == "train":
            labels_seen = {ex.label for ex in examples}
    missing = sorted(set(cfg.labels) - labels_seen)
    if missing:
        logger().warning("training data has no example of label(s) %s", missing)
    return out


def log_data_inputs(data: Splits, splits: Sequence[str] = SPLITS) -> None:
    for split in splits:
        if split not in data:
            continue
        d = data[split]
        if split == "unlabeled":  # may be millions of rows: its source, digest and size, not its rows
            tracking.log_dataset_reference(split, d.source, d.digest, d.n)
        else:
            tracking.log_examples_input(read_examples(d.path), split, d.source, split, d.digest)
