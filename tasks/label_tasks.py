"""Prefect tasks of the ensemble stage: ensemble metrics, content-addressed shards of unlabeled text, and
their soft labels from the weighted ensemble at temperature T."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from pet_config.schema import PipelineConfig
from pet_io.atomic import atomic_path, is_done, publish, read_done, save_npy_atomic
from pet_io.digests import digest
from pet_io.example_files import iter_examples
from pet_io.example_files import read_examples
from prompt_models import label_precision
from prompt_models.engines import cpu_runs_bf16
from prompt_models.ensemble import ensemble_weights, merge_logits, soft_labels
from prompt_models.examples import InputExample, example_digest, examples_digest, gold_indices
from prompt_models.training import classification_metrics, configure_threads

from . import figures, tracking
from .data_tasks import logger
from .pattern_tasks import EVAL_SPLITS, load_pattern_model, split_logits
from .records import LabeledShard, ModelLabeling, PatternModelRef, Shard, Splits

def ensemble_key(models: Sequence[PatternModelRef], weighting: str, temperature: float) -> str:
    return digest({"models": sorted(m.key for m in models), "weighting": weighting, "T": temperature})


def model_weights(cfg: PipelineConfig, models: Sequence[PatternModelRef]) -> list[float]:
    return ensemble_weights([m.pre_train_accuracy for m in models], cfg.pet.ensemble_weighting).tolist()


@task(name="evaluate-ensemble", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def evaluate_ensemble(cfg: PipelineConfig, data: Splits, models: Sequence[PatternModelRef],
                      parent_run_id: str | None) -> dict:
    """Dev/test metrics of the weighted ensemble from each model's stored logits."""
    weights = model_weights(cfg, models)
    labels = cfg.verbalizer_obj().labels
    result = {"weights": weights}
    with tracking.stage_run(cfg, parent_run_id, "evaluate-ensemble"):
        mlflow.log_dict({m.key: w for m, w in zip(models, weights)}, "ensemble_weights.json")
        for split in EVAL_SPLITS:
            if split not in data:
                continue
            merged = merge_logits([split_logits(cfg, m, data, split) for m in models], weights)
            gold = gold_indices(read_examples(data[split].path), labels)
            met = classification_metrics(merged, gold, len(labels))
            result[f"{split}_accuracy"] = met["accuracy"]
            result[f"{split}_macro_f1"] = met["macro_f1"]
            figures.log_confusion(met["confusion"], labels, split, "ensemble")
        mlflow.log_metrics({k: v for k, v in result.items() if k != "weights"})
    return result


# ------------------------------------------------------------------------------------------ soft labels
# Soft-labeling is model-major: each pattern model is loaded once per stage and writes its logits for
# every shard that lacks them (``label_with_model``, one task per model); a cheap task per shard then
# merges the models' logits into soft labels (``merge_shard``). A rerun or a relabel computes only
# the missing (model, shard) pairs, and a different ensemble of the same models reuses them all.
def label_store(cfg: PipelineConfig, ens_key: str) -> Path:
    return cfg.work_path / "soft_labels" / ens_key


def shard_logits_path(cfg: PipelineConfig, model: PatternModelRef, shard: Shard) -> Path:
    return cfg.work_path / "shard_logits" / model.key / f"{shard.digest}.npy"


def labeled_digests(cfg: PipelineConfig, ens_key: str) -> set[str]:
    """Digests of every text the ensemble has already soft-labeled (finished shards only)."""
    seen: set[str] = set()
    for done in label_store(cfg, ens_key).glob("*/done.json"):
        seen.update(_read_label_file(read_done(done.parent)["path"], columns=["digest"])["digest"])
    return seen


@task(name="make-shards", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def make_shards(cfg: PipelineConfig, unlabeled_path: str, exclude: Sequence[str] = ()) -> list[Shard]:
    """Cut the unlabeled copy (minus already-labeled texts and duplicates) into content-addressed
    Parquet shards of ``pet.shard_size`` rows, a batch at a time: memory holds one shard and the
    digests seen, never the whole split."""
    excluded = set(exclude)
    skip = set(excluded)
    shards: list[Shard] = []
    chunk: list[InputExample] = []
    repeats = 0
    for ex in iter_examples(unlabeled_path):
        d = example_digest(ex)
        if d in skip:
            repeats += d not in excluded
            continue
        skip.add(d)
        chunk.append(ex)
        if len(chunk) == cfg.pet.shard_size:
            shards.append(_write_shard(cfg, chunk))
            chunk = []
    if chunk:
        shards.append(_write_shard(cfg, chunk))
    if repeats:  # mpqa's pool: 64 of 1,000 short phrases; the soft-labeled count would not add up otherwise
        logger().info("%d repeated unlabeled text(s) soft-labeled once", repeats)
    return shards



def _write_shard(cfg: PipelineConfig, chunk: list[InputExample]) -> Shard:
    d = examples_digest(chunk)[:24]
    path = cfg.work_path / "data" / "shards" / f"{d}.parquet"
    if not path.exists():
        with atomic_path(path) as tmp:
            pq.write_table(pa.table({"text_a": [e.text_a for e in chunk], "text_b": pa.array([e.text_b for e in chunk], pa.string())}), tmp)
    return Shard(str(path), d, len(chunk))


@task(name="label-with-model", cache_policy=NO_CACHE, task_run_name="label-with-{model.key:.12}")
def label_with_model(cfg: PipelineConfig, model: PatternModelRef, shards: Sequence[Shard], train_path: str,
                     stage_run_id: str | None = None) -> ModelLabeling:
    """Load one pattern model once and write its logits for every shard that lacks them."""
    configure_threads()
    todo = [s for s in shards if not shard_logits_path(cfg, model, s).exists()]
    if todo:
        pet = load_pattern_model(cfg, model, train_path)
        rows = sum(s.n for s in todo)
        batch = cfg.pet.train.eval_batch_size
        examples = read_examples(todo[0].path)  # the first shard: its first texts are the precision check's
        pet, precision, first = label_precision.choose(pet, examples[:label_precision.SAMPLE_TEXTS], batch,
                                                       cfg.pet.label_precision, rows, cpu_runs_bf16())
        logger().info("pattern model %s %s", model.key[:12], precision.line())
        progress = tracking.texts_logger(f"labeling with pattern model {model.key[:12]}", rows, logger())
        done = 0
        for i, shard in enumerate(todo):
            examples = examples if i == 0 else read_examples(shard.path)
            if first is None:
                logits = pet.predict_logits(examples, batch)  # (n, labels)
            else:  # the precision check scored the first texts already
                rest = examples[len(first):]
                logits = np.concatenate([first] + ([pet.predict_logits(rest, batch)] if rest else []))
                first = None
            save_npy_atomic(shard_logits_path(cfg, model, shard), logits)
            done += shard.n
            progress(done)
        del pet
        if stage_run_id:
            client = mlflow.MlflowClient(cfg.tracking_uri())
            client.log_metric(stage_run_id, "rows_labeled", rows)
            client.set_tag(stage_run_id, f"label_precision.{model.key[:12]}", precision.precision)
            if precision.agreement is not None:
                client.log_metric(stage_run_id, f"bf16_agreement.{model.key[:12]}", precision.agreement)
    return ModelLabeling(model.key, len(todo), len(shards) - len(todo))


@task(name="merge-shard", cache_policy=NO_CACHE, task_run_name="merge-{shard.digest}")
def merge_shard(cfg: PipelineConfig, shard: Shard, models: Sequence[PatternModelRef], ens_key: str) -> LabeledShard:
    """Merge every model's logits on one shard into soft labels at temperature T (a Parquet file)."""
    folder = label_store(cfg, ens_key) / shard.digest
    if is_done(folder):
        return LabeledShard.from_done(folder)
    missing = [m.key for m in models if not shard_logits_path(cfg, m, shard).exists()]
    if missing:
        raise FileNotFoundError(f"shard {shard.digest} has no logits from pattern models {missing}")
    merged = merge_logits([np.load(shard_logits_path(cfg, m, shard)) for m in models], model_weights(cfg, models))
    probs = soft_labels(merged, cfg.pet.temperature)
    examples = read_examples(shard.path)

    def write(tmp: Path) -> dict:
        table = pa.table({
            "text_a": [ex.text_a for ex in examples],
            "text_b": [ex.text_b for ex in examples],
            "digest": [example_digest(ex) for ex in examples],
            "logits": pa.array(merged.tolist(), pa.list_(pa.float32())),
            "probs": pa.array(probs.tolist(), pa.list_(pa.float32())),
        })
        pq.write_table(table, tmp / "labels.parquet")
        return {"path": str(folder / "labels.parquet"), "digest": shard.digest, "n": len(examples)}

    publish(folder, write)
    return LabeledShard.from_done(folder, cached=False)


def _read_label_file(path: str, columns: list[str] | None = None) -> dict[str, list]:
    if path.endswith(".jsonl"):  # soft labels written before they were Parquet
        with open(path) as fh:
            rows = [json.loads(line) for line in fh]
        return {c: [r.get(c) for r in rows] for c in (columns or ["text_a", "text_b", "digest", "logits", "probs"])}
    return pq.read_table(path, columns=columns).to_pydict()


def read_soft_labels(paths: Sequence[str]) -> tuple[list[InputExample], np.ndarray]:
    examples, probs = [], []
    for p in paths:
        cols = _read_label_file(p, ["text_a", "text_b", "digest", "probs"])
        examples += [InputExample(a, b, None, d) for a, b, d in zip(cols["text_a"], cols["text_b"], cols["digest"])]
        probs += cols["probs"]
    return examples, np.asarray(probs, dtype=np.float32)
