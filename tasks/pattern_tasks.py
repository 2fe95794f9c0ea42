"""Prefect tasks of the pattern-model stage: train (or reuse) one PET model per (pattern, seed[, generation])
and score it on the current dev/test files."""
from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from pathlib import Path

import mlflow
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from pet_config.schema import PipelineConfig
from pet_io.atomic import is_done, publish, read_done, save_npy_atomic
from pet_io.digests import digest, model_digest
from pet_io.example_files import iter_examples
from pet_io.example_files import read_examples
from prompt_models.demonstrations import DemonstrationSampler, load_sentence_encoder, sentence_embeddings
from prompt_models.examples import (MAX_SCORED_PER_LABEL, InputExample, at_most_per_label, examples_digest,
                                    gold_indices)
from prompt_models.patterns import Pattern
from prompt_models.pet import PETModel
from prompt_models.training import classification_metrics, configure_threads, pick_device, set_seed

from . import figures, tracking
from .caching import train_cfg_key
from .data_tasks import logger
from .records import PatternModelRef, Splits

def _pet_model(cfg: PipelineConfig, template: str, train: list[InputExample], seed: int) -> PETModel:
    set_seed(seed)  # freshly initialised parts (soft prompt encoders, LoRA) depend on it
    model = PETModel.from_pretrained(
        cfg.resolve(cfg.model.path),
        Pattern(template),
        cfg.verbalizer_obj(),
        cfg.model.max_length,
        cfg.pet.soft_prompt.core(),
        cfg.pet.lora.core(),
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
            embed = functools.partial(sentence_embeddings, encoder, enc_tok, max_length=cfg.model.max_length)
        model.demonstrations = DemonstrationSampler(train, model.verbalizer, demo.per_class, seed, embed, demo.top_fraction)
    return model


def load_pattern_model(cfg: PipelineConfig, model: PatternModelRef, train_path: str) -> PETModel:
    """A trained pattern model ready for inference (demonstrations drawn from ``train_path`` if enabled)."""
    train = read_examples(train_path) if cfg.pet.demonstrations.enabled else []
    return _prepare(cfg, PETModel.load(model.model_path), train, model.seed)


def pattern_model_key(cfg: PipelineConfig, data: Splits, template: str, seed: int,
                      extra_digest: str | None = None) -> str:
    use_unlabeled = cfg.pet.train.mlm_alpha > 0 and "unlabeled" in data
    return digest(
        {
            "model": model_digest(cfg.resolve(cfg.model.path)),
            "max_length": cfg.model.max_length,
            "train": data["train"].digest,
            "unlabeled": data["unlabeled"].digest if use_unlabeled else None,
            "extra": extra_digest,
            "template": template,
            "verbalizer": cfg.verbalizer.model_dump(),
            "train_cfg": train_cfg_key(cfg.pet.train),
            "soft_prompt": cfg.pet.soft_prompt.model_dump(),
            "lora": cfg.pet.lora.model_dump() if cfg.pet.lora.enabled else None,  # unused settings change nothing
            "demonstrations": _demonstrations_key(cfg),
            "seed": seed,
        }
    )


def _demonstrations_key(cfg: PipelineConfig) -> dict:
    demo = cfg.pet.demonstrations.model_dump()
    encoder = demo.pop("encoder_path")
    if demo["enabled"] and demo["filter"] == "similarity" and encoder:
        demo["encoder"] = model_digest(cfg.resolve(encoder))  # the encoder's bytes, not where it is installed
    return demo


@task(name="train-pattern-model", cache_policy=NO_CACHE, task_run_name="train-p{pattern_index}-s{seed}-g{generation}")
def train_pattern_model(
    cfg: PipelineConfig,
    data: Splits,
    template: str,
    pattern_index: int,
    seed: int,
    parent_run_id: str | None,
    generation: int = 0,
    extra_train_path: str | None = None,
) -> PatternModelRef:
    """Train (or reuse) one PET model for (pattern, seed[, iPET generation]) and evaluate it."""
    configure_threads()
    log = logger()
    extra = read_examples(extra_train_path) if extra_train_path else []
    key = pattern_model_key(cfg, data, template, seed, examples_digest(extra) if extra else None)
    folder = cfg.work_path / "pattern_models" / key
    name = f"pattern-{pattern_index}-seed-{seed}" + (f"-gen-{generation}" if generation else "")
    tags = {"pattern_index": str(pattern_index), "seed": str(seed), "generation": str(generation), "cache_key": key}
    with tracking.stage_run(cfg, parent_run_id, name, tags) as run:
        mlflow.log_params({"template": template, "seed": seed, "generation": generation, "n_extra": len(extra)})
        if is_done(folder):
            info = PatternModelRef.from_dict(read_done(folder))
            log.info("%s: cached (%s), trained in run %s", name, key, info.run_id)
            mlflow.set_tags({"cached": "true", "source_run_id": info.run_id})
            # dev/test are not part of the key: score the cached model on the current files
            scores = split_scores(cfg, info, data)
            metrics = {"pre_train_accuracy": info.pre_train_accuracy, **_flat(scores)}
            mlflow.log_metrics(metrics)
            figures.log_confusions(scores, cfg.verbalizer_obj().labels, name)
            return dataclasses.replace(info, metrics=metrics, cached=True, stage_run_id=run.info.run_id)
        mlflow.set_tag("cached", "false")
        train = read_examples(data["train"].path)
        unlabeled = _aux_sample(cfg, data)
        tracking.log_examples_input(train, "train", data["train"].source, "training", data["train"].digest)
        if extra:
            tracking.log_examples_input(extra, "ipet_pseudo_labeled", extra_train_path, "training", examples_digest(extra))
        model = _pet_model(cfg, template, train, seed)
        # one sample for every pattern model (seed 0, not the model's): their weights are compared with each other
        weighed_on = at_most_per_label(train, MAX_SCORED_PER_LABEL, seed=0)
        pre_train = model.evaluate(weighed_on, cfg.pet.train.eval_batch_size)["accuracy"]
        mlflow.log_param("pre_train_examples", len(weighed_on))
        fit = train + extra
        started = time.perf_counter()
        seconds = {}  # where a pattern model's time goes (training against scoring dev/test), as MLflow metrics
        model.train_model(
            fit,
            cfg.pet.train.core(),
            seed=seed,
            unlabeled=unlabeled,
            log_fn=tracking.step_logger(name, cfg.pet.train.max_steps, "train_loss", logger()),
        )
        seconds["train_s"] = time.perf_counter() - started
        record = PatternModelRef(key, str(folder), str(folder / "model"), template, pattern_index, seed, generation,
                                 run.info.run_id)

        def write(tmp: Path) -> dict:
            for split in EVAL_SPLITS:
                if split in data:
                    started = time.perf_counter()
                    logits = model.predict_logits(read_examples(data[split].path), cfg.pet.train.eval_batch_size)
                    seconds[f"{split}_scoring_s"] = time.perf_counter() - started
                    np.save(tmp / logits_file(split, data), logits)
            model.save(tmp / "model")
            metrics = {"pre_train_accuracy": pre_train, **split_metrics(cfg, record, data, tmp)}
            return dataclasses.replace(record, metrics=metrics).done_info()

        info = PatternModelRef.from_dict(publish(folder, write))
        mlflow.log_metrics({**info.metrics, **seconds})
        # from the logits just stored: cheap, and the same whoever won the publish
        figures.log_confusions(split_scores(cfg, info, data), cfg.verbalizer_obj().labels, name)
        log.info("%s: %s", name, ", ".join(f"{k} {v:.3f}" for k, v in info.metrics.items() if "f1" not in k))

        return dataclasses.replace(info, cached=False, stage_run_id=run.info.run_id)


EVAL_SPLITS = ("dev", "test")


def logits_file(split: str, data: Splits) -> str:
    """Stored eval logits are named by the split file's content digest: a changed file gets new ones."""
    return f"{split}-{data[split].digest[:16]}_logits.npy"


def _aux_sample(cfg: PipelineConfig, data: Splits) -> list | None:
    """The unlabeled texts the auxiliary LM loss can use: one batch a step, so at most
    max_steps x batch_size of them (the copy is shuffled when data.unlabeled.seed is set), never
    the whole split, which may hold millions."""
    if "unlabeled" not in data or cfg.pet.train.mlm_alpha <= 0:
        return None
    wanted = cfg.pet.train.max_steps * cfg.pet.train.batch_size
    return list(itertools.islice(iter_examples(data["unlabeled"].path), wanted))



def split_logits(cfg: PipelineConfig, model: PatternModelRef, data: Splits, split: str,
                 folder: Path | None = None) -> np.ndarray:
    """A pattern model's logits on the current ``split`` file, computed once and kept beside the model."""
    path = Path(folder or model.path) / logits_file(split, data)
    if not path.exists():
        pet = load_pattern_model(cfg, model, data["train"].path)
        save_npy_atomic(path, pet.predict_logits(read_examples(data[split].path), cfg.pet.train.eval_batch_size))
    return np.load(path)


def split_scores(cfg: PipelineConfig, model: PatternModelRef, data: Splits,
                 folder: Path | None = None) -> dict[str, dict]:
    """``{split: classification_metrics}`` (confusion matrix included) of a pattern model."""
    labels = cfg.verbalizer_obj().labels
    scores = {}
    for split in EVAL_SPLITS:
        if split in data:
            gold = gold_indices(read_examples(data[split].path), labels)
            scores[split] = classification_metrics(split_logits(cfg, model, data, split, folder), gold, len(labels))
    return scores


def _flat(scores: dict[str, dict]) -> dict:
    return {f"{split}_{k}": m[k] for split, m in scores.items() for k in ("accuracy", "macro_f1")}


def split_metrics(cfg: PipelineConfig, model: PatternModelRef, data: Splits, folder: Path | None = None) -> dict:
    return _flat(split_scores(cfg, model, data, folder))
