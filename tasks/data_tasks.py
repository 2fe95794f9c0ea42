"""Prefect tasks of the data stage: read and check every split, store normalised copies, log them as MLflow inputs."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import mlflow
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pet_config.schema import PipelineConfig
from pet_io import reader
from pet_io.example_files import read_examples, save_examples
from pet_io.overlap import overlaps
from pet_io.unlabeled import skipped_lines, write_copy
from prompt_models.examples import examples_digest

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
    """Every configured split read and checked (``pet_io.reader.read_splits``)."""
    return reader.read_splits({split: cfg.spec(split) for split in SPLITS}, cfg.labels, arrow_cache)


@task(name="load-and-validate", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def load_and_validate(cfg: PipelineConfig) -> Splits:
    """Read every configured split, check it, and store a normalised copy named by its digest."""
    out = {}
    labels_seen: set = set()
    folder = cfg.work_path / "data"
    for split, (spec, examples) in read_splits(cfg, cfg.work_path / "arrow_cache").items():
        if line := skipped_lines(spec):  # the readers skip them: said, not lost silently
            logger().warning(line)
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


def report_overlaps(data: Splits) -> list[str]:
    """A line per evaluation split that shares texts with train or the unlabeled copy (``pet_io.overlap``),
    each also logged as a warning and an MLflow metric of the active run."""
    train = read_examples(data["train"].path) if "train" in data else []
    return _report(data, train, [data["unlabeled"].path] if "unlabeled" in data else [], "unlabeled", "unlabeled")


def report_earlier_overlaps(data: Splits, soft_label_files: Sequence[str]) -> list[str]:
    """The same for texts that earlier runs soft-labeled (Parquet files of the label store)."""
    return _report(data, [], soft_label_files, "texts soft-labeled by earlier runs", "earlier_soft_labels")


def _report(data: Splits, train: Sequence, pools: Sequence[str], pool_name: str, metric: str) -> list[str]:
    evaluation = {s: read_examples(data[s].path) for s in ("dev", "test") if s in data}
    found = overlaps(evaluation, train, pools, pool_name) if evaluation else []
    for o in found:
        logger().warning("%s: its accuracy is optimistic (the run learns from those texts)", o.line())
    if found:
        mlflow.log_metrics({f"overlap_{o.split}_in_{'train' if o.other == 'train' else metric}": o.found
                            for o in found})
    return [o.line() for o in found]
