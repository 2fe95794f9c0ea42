"""Prefect tasks of the PET pipeline. Each returns a small dict (paths, keys, MLflow run ids, metrics).

Caching is by content digest (see ``caching``): Prefect's own result cache is off (NO_CACHE) so a
finished unit is recognised across runs, servers and machines sharing the work folder.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

import mlflow
import numpy as np
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from prompt_models.config import PipelineConfig
from prompt_models.data import (
    InputExample,
    example_digest,
    examples_digest,
    load_examples,
    read_examples,
    save_examples,
)
from prompt_models.demonstrations import DemonstrationSampler, load_sentence_encoder, sentence_embeddings
from prompt_models.distill import SequenceClassifier
from prompt_models.ensemble import ensemble_weights, merge_logits, soft_labels
from prompt_models.patterns import Pattern
from prompt_models.pet import PETModel
from prompt_models.training import classification_metrics, configure_threads, pick_device, set_seed

from . import promotion, tracking
from .caching import digest, is_done, model_digest, publish, read_done

SPLITS = ("train", "dev", "test", "unlabeled")


def _logger():
    try:
        return get_run_logger()
    except Exception:  # called outside a flow/task run (unit tests, notebooks)
        import logging

        return logging.getLogger("pet")


def train_cfg_key(train_cfg) -> dict:
    """The training settings that change a result (progress bars and eval batch size do not)."""
    d = dataclasses.asdict(train_cfg)
    d.pop("progress", None)
    d.pop("eval_batch_size", None)
    return d


# ------------------------------------------------------------------------------------------ data
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
        _logger().warning("training data has no example of label(s) %s", missing)
    return out


def log_data_inputs(data: dict, splits: Sequence[str] = SPLITS) -> None:
    for split in splits:
        if split in data:
            d = data[split]
            tracking.log_examples_input(read_examples(d["path"]), split, d["source"], split, d["digest"])


# ------------------------------------------------------------------------------------------ PET models
def _pet_model(cfg: PipelineConfig, template: str, train: list[InputExample], seed: int) -> PETModel:
    set_seed(seed)  # freshly initialised parts (soft prompt encoders, LoRA) depend on it
    model = PETModel.from_pretrained(
        cfg.resolve(cfg.model.path),
        Pattern(template),
        cfg.verbalizer_obj(),
        cfg.model.max_length,
        cfg.pet.soft_prompt,
        cfg.pet.lora,
    )
    return _prepare(cfg, model, train, seed)


def _prepare(cfg: PipelineConfig, model: PETModel, train: list[InputExample], seed: int) -> PETModel:
    """Move to the configured device and attach demonstrations drawn from ``train`` if enabled."""
    model.to(pick_device(cfg.model.device))
    demo = cfg.pet.demonstrations
    if demo.enabled:
        embed = None
        if demo.filter == "similarity":
            encoder, enc_tok = model.model, model.tokenizer
            if demo.encoder_path:
                encoder, enc_tok = load_sentence_encoder(cfg.resolve(demo.encoder_path))
                encoder.to(model.device)

            def embed(exs):
                return sentence_embeddings(encoder, enc_tok, exs, max_length=cfg.model.max_length)
        model.demonstrations = DemonstrationSampler(train, model.verbalizer, demo.per_class, seed, embed, demo.top_fraction)
    return model


def load_pattern_model(cfg: PipelineConfig, model: dict, train_path: str) -> PETModel:
    """A trained pattern model ready for inference (demonstrations drawn from ``train_path`` if enabled)."""
    train = read_examples(train_path) if cfg.pet.demonstrations.enabled else []
    return _prepare(cfg, PETModel.load(model["model_path"]), train, model["seed"])


def pattern_model_key(cfg: PipelineConfig, data: dict, template: str, seed: int, extra_digest: str | None = None) -> str:
    use_unlabeled = cfg.pet.train.mlm_alpha > 0 and "unlabeled" in data
    return digest(
        {
            "model": model_digest(cfg.resolve(cfg.model.path)),
            "max_length": cfg.model.max_length,
            "train": data["train"]["digest"],
            "unlabeled": data["unlabeled"]["digest"] if use_unlabeled else None,
            "extra": extra_digest,
            "template": template,
            "verbalizer": dataclasses.asdict(cfg.verbalizer),
            "train_cfg": train_cfg_key(cfg.pet.train),
            "soft_prompt": dataclasses.asdict(cfg.pet.soft_prompt),
            "lora": dataclasses.asdict(cfg.pet.lora),
            "demonstrations": _demonstrations_key(cfg),
            "seed": seed,
        }
    )


def _demonstrations_key(cfg: PipelineConfig) -> dict:
    demo = dataclasses.asdict(cfg.pet.demonstrations)
    encoder = demo.pop("encoder_path")
    if demo["enabled"] and demo["filter"] == "similarity" and encoder:
        demo["encoder"] = model_digest(cfg.resolve(encoder))  # the encoder's bytes, not where it is installed
    return demo


@task(name="train-pattern-model", cache_policy=NO_CACHE, task_run_name="train-p{pattern_index}-s{seed}-g{generation}")
def train_pattern_model(
    cfg: PipelineConfig,
    data: dict,
    template: str,
    pattern_index: int,
    seed: int,
    parent_run_id: str | None,
    generation: int = 0,
    extra_train_path: str | None = None,
) -> dict:
    """Train (or reuse) one PET model for (pattern, seed[, iPET generation]) and evaluate it."""
    configure_threads()
    log = _logger()
    extra = read_examples(extra_train_path) if extra_train_path else []
    key = pattern_model_key(cfg, data, template, seed, examples_digest(extra) if extra else None)
    folder = cfg.work_path / "pattern_models" / key
    name = f"pattern-{pattern_index}-seed-{seed}" + (f"-gen-{generation}" if generation else "")
    tags = {"pattern_index": str(pattern_index), "seed": str(seed), "generation": str(generation), "cache_key": key}
    with tracking.stage_run(cfg, parent_run_id, name, tags) as run:
        mlflow.log_params({"template": template, "seed": seed, "generation": generation, "n_extra": len(extra)})
        if is_done(folder):
            info = read_done(folder)
            log.info("%s: cached (%s), trained in run %s", name, key, info["run_id"])
            mlflow.set_tags({"cached": "true", "source_run_id": info["run_id"]})
            # dev/test are not part of the key: score the cached model on the current files
            metrics = {"pre_train_accuracy": info["metrics"]["pre_train_accuracy"], **split_metrics(cfg, info, data)}
            mlflow.log_metrics(metrics)
            return dict(info, metrics=metrics, cached=True, stage_run_id=run.info.run_id)
        mlflow.set_tag("cached", "false")
        train = read_examples(data["train"]["path"])
        unlabeled = read_examples(data["unlabeled"]["path"]) if "unlabeled" in data else None
        tracking.log_examples_input(train, "train", data["train"]["source"], "training", data["train"]["digest"])
        if extra:
            tracking.log_examples_input(extra, "ipet_pseudo_labeled", extra_train_path, "training", examples_digest(extra))
        model = _pet_model(cfg, template, train, seed)
        pre_train = model.evaluate(train, cfg.pet.train.eval_batch_size)["accuracy"]
        fit = train + extra
        model.train_model(
            fit,
            cfg.pet.train,
            seed=seed,
            unlabeled=unlabeled,
            log_fn=lambda m, step: mlflow.log_metrics(m, step=step),
        )
        record = {
            "key": key,
            "path": str(folder),
            "model_path": str(folder / "model"),
            "template": template,
            "pattern_index": pattern_index,
            "seed": seed,
            "generation": generation,
            "run_id": run.info.run_id,
        }

        def write(tmp: Path) -> dict:
            for split in EVAL_SPLITS:
                if split in data:
                    logits = model.predict_logits(read_examples(data[split]["path"]), cfg.pet.train.eval_batch_size)
                    np.save(tmp / logits_file(split, data), logits)
            model.save(tmp / "model")
            return dict(record, metrics={"pre_train_accuracy": pre_train, **split_metrics(cfg, record, data, tmp)})

        info = publish(folder, write)
        mlflow.log_metrics(info["metrics"])
        log.info("%s: %s", name, info["metrics"])
        del model
        return dict(info, cached=False, stage_run_id=run.info.run_id)


EVAL_SPLITS = ("dev", "test")


def logits_file(split: str, data: dict) -> str:
    """Stored eval logits are named by the split file's content digest: a changed file gets new ones."""
    return f"{split}-{data[split]['digest'][:16]}_logits.npy"


def split_logits(cfg: PipelineConfig, model: dict, data: dict, split: str, folder: Path | None = None) -> np.ndarray:
    """A pattern model's logits on the current ``split`` file, computed once and kept beside the model."""
    path = Path(folder or model["path"]) / logits_file(split, data)
    if not path.exists():
        pet = load_pattern_model(cfg, model, data["train"]["path"])
        logits = pet.predict_logits(read_examples(data[split]["path"]), cfg.pet.train.eval_batch_size)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, logits)
        os.replace(tmp, path)
    return np.load(path)


def split_metrics(cfg: PipelineConfig, model: dict, data: dict, folder: Path | None = None) -> dict:
    labels = cfg.verbalizer_obj().labels
    metrics = {}
    for split in EVAL_SPLITS:
        if split in data:
            gold = np.array([labels.index(ex.label) for ex in read_examples(data[split]["path"])])
            m = classification_metrics(split_logits(cfg, model, data, split, folder), gold, len(labels))
            metrics[f"{split}_accuracy"] = m["accuracy"]
            metrics[f"{split}_macro_f1"] = m["macro_f1"]
    return metrics


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


# ------------------------------------------------------------------------------------------ distillation
@task(name="distill", cache_policy=NO_CACHE)
def distill(cfg: PipelineConfig, labeled_shards: Sequence[dict], ens_key: str, parent_run_id: str | None) -> dict:
    """Train the final sequence classifier on the soft labels (KL at T, times T^2)."""
    configure_threads()
    base = cfg.resolve(cfg.distill.model_path or cfg.model.path)
    train_cfg = distill_train_cfg(cfg)
    shard_digests = sorted(s["digest"] for s in labeled_shards)
    key = classifier_key(cfg, ens_key, shard_digests)
    folder = cfg.work_path / "classifiers" / key
    with tracking.stage_run(cfg, parent_run_id, "distill", {"cache_key": key, "ensemble_key": ens_key}) as run:
        mlflow.log_params({"base_model": base, "n_shards": len(shard_digests), "temperature": train_cfg.temperature})
        if is_done(folder):
            info = read_done(folder)
            mlflow.set_tags({"cached": "true", "source_run_id": info["run_id"]})
            return dict(info, cached=True)
        examples, probs = read_soft_labels([s["path"] for s in labeled_shards])
        tracking.log_examples_input(examples, "soft_labeled", str(label_store(cfg, ens_key)), "training", digest(shard_digests))
        mlflow.log_metric("n_soft_labeled", len(examples))
        set_seed(cfg.distill.seed)  # the new classification head is initialised here
        clf = SequenceClassifier.from_pretrained(base, cfg.verbalizer_obj().labels, cfg.model.max_length)
        clf.model.to(pick_device(cfg.model.device))
        fit = clf.train_model(examples, probs, train_cfg, cfg.distill.seed, lambda m, s: mlflow.log_metrics(m, step=s))
        mlflow.log_metric("final_distill_loss", fit["final_loss"])

        def write(tmp: Path) -> dict:
            clf.save(tmp / "model")
            return {"key": key, "path": str(folder / "model"), "run_id": run.info.run_id, "n_train": len(examples)}

        return dict(publish(folder, write), cached=False)


def distill_train_cfg(cfg: PipelineConfig):
    # the student learns the teacher's probabilities at the temperature they were made with
    return dataclasses.replace(cfg.distill.train, temperature=cfg.pet.temperature)


def classifier_key(cfg: PipelineConfig, ens_key: str, shard_digests: Sequence[str]) -> str:
    return digest(
        {
            "ensemble": ens_key,
            "shards": sorted(shard_digests),
            "base": model_digest(cfg.resolve(cfg.distill.model_path or cfg.model.path)),
            "train_cfg": train_cfg_key(distill_train_cfg(cfg)),
            "labels": cfg.verbalizer_obj().labels,
            "max_length": cfg.model.max_length,
            "seed": cfg.distill.seed,
        }
    )


@task(name="evaluate-classifier", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def evaluate_classifier(cfg: PipelineConfig, data: dict, classifier: dict, parent_run_id: str | None) -> dict:
    configure_threads()
    clf = SequenceClassifier.load(classifier["path"])
    clf.model.to(pick_device(cfg.model.device))
    metrics = {}
    with tracking.stage_run(cfg, parent_run_id, "evaluate-classifier", {"classifier_key": classifier["key"]}):
        for split in ("dev", "test"):
            if split in data:
                m = clf.evaluate(read_examples(data[split]["path"]), cfg.pet.train.eval_batch_size)
                metrics[f"{split}_accuracy"] = m["accuracy"]
                metrics[f"{split}_macro_f1"] = m["macro_f1"]
        mlflow.log_metrics(metrics)
    return metrics


@task(name="register-classifier", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def register_classifier(
    cfg: PipelineConfig, data: dict, classifier: dict, metrics: dict, parent_run_id: str | None, flow_run_id: str | None
) -> dict:
    """Log the classifier with MLflow's transformers flavor, register it (once per classifier key),
    and promote it to the champion alias if it is at least as good as the champion (``promotion``)."""
    name = cfg.tracking.registered_model
    client = mlflow.MlflowClient(cfg.tracking_uri())
    with tracking.stage_run(cfg, parent_run_id, "register", {"classifier_key": classifier["key"]}):
        # runs of one pipeline take turns (flows.common.pipeline_slot), so check-then-register cannot race
        version = _version_with_key(client, name, classifier["key"])
        reused = version is not None
        if reused:
            mlflow.set_tags({"reused_version": version})
        else:
            tags = {f"metric.{k}": v for k, v in metrics.items()}
            tags.update({f"data_digest.{s}": data[s]["digest"] for s in EVAL_SPLITS if s in data})
            tags.update(prefect_flow_run_id=flow_run_id, classifier_key=classifier["key"])
            version = _log_and_register(cfg, classifier, name, {k: str(v) for k, v in tags.items() if v is not None})
        decision = promotion.decide(cfg, data, client, version, metrics)
        mlflow.log_metrics(metrics)
        mlflow.log_dict(decision.to_dict(), "promotion.json")
        mlflow.set_tags({"promoted": str(decision.promoted).lower(), "alias": decision.alias, "version": version})
        if decision.champion_score is not None:
            mlflow.log_metric("champion_score", decision.champion_score)
        _logger().info("registered %s v%s -> alias %r: %s", name, version, decision.alias, decision.reason)
    return {
        "name": name, "version": version, "alias": decision.alias, "model_uri": f"models:/{name}@{decision.alias}",
        "reused": reused, "promoted": decision.promoted, "promotion": decision.reason,
    }


def _log_and_register(cfg: PipelineConfig, classifier: dict, name: str, tags: dict) -> str:
    import transformers

    clf = SequenceClassifier.load(classifier["path"])
    info = mlflow.transformers.log_model(
        transformers_model={"model": clf.model, "tokenizer": clf.tokenizer},
        name="classifier",
        task="text-classification",
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}"],
        metadata={"labels": clf.labels, "classifier_key": classifier["key"]},
    )
    # the version is created with its classifier_key tag: a retried task finds it instead of registering twice
    return str(mlflow.register_model(info.model_uri, name, tags=tags).version)


def _version_with_key(client, name: str, key: str) -> str | None:
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except mlflow.exceptions.MlflowException:
        return None
    for v in versions:
        if v.tags.get("classifier_key") == key:
            return str(v.version)
    return None
