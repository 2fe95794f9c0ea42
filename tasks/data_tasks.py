"""Prefect tasks of the data stage: read and check every split, store normalised copies, log them as MLflow inputs."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from prompt_models.config import PipelineConfig
from prompt_models.data import (
    examples_digest,
    load_examples,
    read_examples,
    save_examples,
)

from . import tracking

SPLITS = ("train", "dev", "test", "unlabeled")


def logger():
    try:
        return get_run_logger()
    except Exception:  # called outside a flow/task run (unit tests, notebooks)
        import logging

        return logging.getLogger("pet")

def read_splits(cfg: PipelineConfig) -> dict[str, tuple]:
    """Every configured split read and checked (row-level errors name the file and line); writes nothing."""
    out = {}
    for split in SPLITS:
        spec = cfg.spec(split)
        if spec is None:
            continue
        if split == "unlabeled":
            spec = dataclasses.replace(spec, label=None)
        out[split] = (spec, load_examples(spec, cfg.labels, require_labels=split != "unlabeled"))
    return out


@task(name="load-and-validate", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def load_and_validate(cfg: PipelineConfig) -> dict:
    """Read every configured split, check it, and store a normalised copy named by its digest."""
    out = {}
    labels_seen: set = set()
    for split, (spec, examples) in read_splits(cfg).items():
        d = examples_digest(examples)
        path = cfg.work_path / "data" / f"{split}-{d[:16]}.jsonl"
        if not path.exists():
            save_examples(examples, path)
        out[split] = {"path": str(path), "digest": d, "n": len(examples), "source": spec.path}
        if split == "train":
            labels_seen = {ex.label for ex in examples}
    missing = sorted(set(cfg.labels) - labels_seen)
    if missing:
        logger().warning("training data has no example of label(s) %s", missing)
    return out


def log_data_inputs(data: dict, splits: Sequence[str] = SPLITS) -> None:
    for split in splits:
        if split in data:
            d = data[split]
            tracking.log_examples_input(read_examples(d["path"]), split, d["source"], split, d["digest"])
