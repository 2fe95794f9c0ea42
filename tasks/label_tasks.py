"""Prefect tasks of the ensemble stage: ensemble metrics, content-addressed shards of unlabeled text, and
their soft labels from the weighted ensemble at temperature T."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import mlflow
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from prompt_models.config import PipelineConfig
from prompt_models.data import (
    InputExample,
    example_digest,
    examples_digest,
    read_examples,
    save_examples,
)
from prompt_models.ensemble import ensemble_weights, merge_logits, soft_labels
from prompt_models.training import classification_metrics, configure_threads

from . import figures, tracking
from .caching import digest, is_done, publish, read_done
from .pattern_tasks import EVAL_SPLITS, load_pattern_model, split_logits

def ensemble_key(models: Sequence[dict], weighting: str, temperature: float) -> str:
    return digest({"models": sorted(m["key"] for m in models), "weighting": weighting, "T": temperature})


def model_weights(cfg: PipelineConfig, models: Sequence[dict]) -> list[float]:
    return ensemble_weights([m["metrics"]["pre_train_accuracy"] for m in models], cfg.pet.ensemble_weighting).tolist()


@task(name="evaluate-ensemble", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def evaluate_ensemble(cfg: PipelineConfig, data: dict, models: Sequence[dict], parent_run_id: str | None) -> dict:
    """Dev/test metrics of the weighted ensemble from each model's stored logits."""
    weights = model_weights(cfg, models)
    labels = cfg.verbalizer_obj().labels
    result = {"weights": weights}
    with tracking.stage_run(cfg, parent_run_id, "evaluate-ensemble"):
        mlflow.log_dict({m["key"]: w for m, w in zip(models, weights)}, "ensemble_weights.json")
        for split in EVAL_SPLITS:
            if split not in data:
                continue
            merged = merge_logits([split_logits(cfg, m, data, split) for m in models], weights)
            gold = np.array([labels.index(ex.label) for ex in read_examples(data[split]["path"])])
            met = classification_metrics(merged, gold, len(labels))
            result[f"{split}_accuracy"] = met["accuracy"]
            result[f"{split}_macro_f1"] = met["macro_f1"]
            figures.log_confusion(met["confusion"], labels, split, "ensemble")
        mlflow.log_metrics({k: v for k, v in result.items() if k != "weights"})
    return result


# ------------------------------------------------------------------------------------------ soft labels
def label_store(cfg: PipelineConfig, ens_key: str) -> Path:
    return cfg.work_path / "soft_labels" / ens_key


def labeled_digests(cfg: PipelineConfig, ens_key: str) -> set[str]:
    """Digests of every text the ensemble has already soft-labeled (finished shards only)."""
    seen: set[str] = set()
    for done in label_store(cfg, ens_key).glob("*/done.json"):
        with open(done.parent / "labels.jsonl") as fh:
            seen.update(json.loads(line)["digest"] for line in fh)
    return seen


@task(name="make-shards", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def make_shards(cfg: PipelineConfig, unlabeled_path: str, exclude: Sequence[str] = ()) -> list[dict]:
    """Split unlabeled data (minus already-labeled texts and duplicates) into content-addressed shards."""
    skip = set(exclude)
    todo: list[InputExample] = []
    for ex in read_examples(unlabeled_path):
        d = example_digest(ex)
        if d not in skip:
            skip.add(d)
            todo.append(ex)
    shards = []
    size = cfg.pet.shard_size
    for i in range(0, len(todo), size):
        chunk = todo[i : i + size]
        d = examples_digest(chunk)[:24]
        path = cfg.work_path / "data" / "shards" / f"{d}.jsonl"
        if not path.exists():
            save_examples(chunk, path)
        shards.append({"path": str(path), "digest": d, "n": len(chunk)})
    return shards


@task(name="soft-label-shard", cache_policy=NO_CACHE, task_run_name="soft-label-{shard[digest]}")
def soft_label_shard(
    cfg: PipelineConfig, shard: dict, models: Sequence[dict], ens_key: str, train_path: str, stage_run_id: str | None
) -> dict:
    """Merge all pattern models' logits on one shard into soft labels at temperature T."""
    configure_threads()
    folder = label_store(cfg, ens_key) / shard["digest"]
    if is_done(folder):
        return dict(read_done(folder), cached=True)
    examples = read_examples(shard["path"])
    weights = model_weights(cfg, models)
    all_logits = []
    for m in models:
        model = load_pattern_model(cfg, m, train_path)
        all_logits.append(model.predict_logits(examples, cfg.pet.train.eval_batch_size))
        del model
    merged = merge_logits(all_logits, weights)
    probs = soft_labels(merged, cfg.pet.temperature)

    def write(tmp: Path) -> dict:
        with open(tmp / "labels.jsonl", "w") as fh:
            for ex, lg, pr in zip(examples, merged, probs):
                row = {"text_a": ex.text_a, "text_b": ex.text_b, "digest": example_digest(ex)}
                row.update(logits=[float(x) for x in lg], probs=[float(x) for x in pr])
                fh.write(json.dumps(row) + "\n")
        return {"path": str(folder / "labels.jsonl"), "digest": shard["digest"], "n": len(examples)}

    info = publish(folder, write)
    if stage_run_id:
        mlflow.MlflowClient(cfg.tracking_uri()).log_metric(stage_run_id, "rows_labeled", len(examples))
    return dict(info, cached=False)


def read_soft_labels(paths: Sequence[str]) -> tuple[list[InputExample], np.ndarray]:
    examples, probs = [], []
    for p in paths:
        with open(p) as fh:
            for line in fh:
                row = json.loads(line)
                examples.append(InputExample(row["text_a"], row["text_b"], None, row["digest"]))
                probs.append(row["probs"])
    return examples, np.asarray(probs, dtype=np.float32)
