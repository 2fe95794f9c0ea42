"""Prefect tasks of automatic prompts: choose (templates, label words) by calibrated zero-shot scoring,
and the calibrated zero-shot reference row of an evaluation. Both cached by content digest."""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from prompt_models.auto_prompts import (
    QUESTION_TEMPLATES, SEARCH_VERSION, candidate_templates, select_prompts, zero_shot_logits,
)
from prompt_models.word_pools import any_words
from prompt_models.backbones import backbone_kind, load_language_model, load_tokenizer
from pet_config.schema import PipelineConfig
from pet_io.atomic import is_done, publish, read_done
from pet_io.digests import digest, model_digest
from pet_io.example_files import iter_examples, read_examples
from prompt_models.examples import InputExample
from prompt_models.function_words import are_questions
from prompt_models.label_names import searches_label_words, words_used
from prompt_models.patterns import Pattern
from prompt_models.pet import PETModel
from prompt_models.training import classification_metrics, configure_threads, pick_device
from prompt_models.verbalizer import Verbalizer

from .data_tasks import logger
from .records import Splits

EVAL_SPLITS = ("dev", "test")


def prior_texts(cfg: PipelineConfig, data: Splits) -> list[InputExample]:
    """A seeded sample of unlabeled texts (else the labeled texts, labels dropped) for the label prior."""
    n, rng = cfg.auto_prompts.prior_texts, random.Random(cfg.auto_prompts.seed)
    if "unlabeled" in data:
        pool = []
        for i, ex in enumerate(iter_examples(data["unlabeled"].path)):
            if i >= 20 * n:  # enough to sample from without reading a huge file
                break
            pool.append(ex)
    else:
        pool = [dataclasses.replace(ex, label=None) for s in ("train", "dev") if s in data
                for ex in read_examples(data[s].path)]
    return rng.sample(pool, min(n, len(pool)))


def _model_factory(cfg: PipelineConfig):
    """(template, label words) -> PETModel, all sharing one backbone loaded once."""
    configure_threads()
    path = cfg.resolve(cfg.model.path)
    tok = load_tokenizer(path)
    lm = load_language_model(path, backbone_kind(path)).to(pick_device(cfg.model.device))
    placeholder = any_words(tok)
    return lambda template, words: PETModel(lm, tok, Pattern(template),
                                            Verbalizer(words or placeholder, cfg.verbalizer.multi_token),
                                            cfg.model.max_length)


def backbone_params(path: str) -> int:
    """Parameter count from the safetensors headers (no weights read)."""
    from safetensors import safe_open

    total = 0
    for f in Path(path).glob("*.safetensors"):
        with safe_open(str(f), "pt") as fh:
            for name in fh.keys():
                total += int(np.prod(fh.get_slice(name).get_shape()))
    return total


def _digests(data: Splits) -> dict:
    return {k: v.digest for k, v in data.items() if k != "test"}


def _written_for_task(cfg: PipelineConfig, questions: bool) -> list[str]:
    """Candidate templates written for this task's kind of text, not the generic library's."""
    if cfg.patterns:  # the config's own templates: none is chosen, nothing to re-rank
        return []
    return list(cfg.auto_prompts.templates) + (QUESTION_TEMPLATES if questions else [])


@task(name="choose-prompts", cache_policy=NO_CACHE)
def choose_prompts(cfg: PipelineConfig, data: Splits) -> dict:
    """``AutoPromptResult.to_dict()`` for the config's data (cached: same inputs, same choice)."""
    ap = cfg.auto_prompts
    train = read_examples(data["train"].path)
    pair = any(ex.text_b for ex in train)
    questions = are_questions([ex.text_a for ex in train])
    templates = list(cfg.patterns) or candidate_templates(pair, ap.templates, questions)
    key = digest({
        "model": model_digest(cfg.resolve(cfg.model.path)), "data": _digests(data), "templates": templates,
        "label_words": cfg.verbalizer.label_words, "labels": cfg.labels, "max_length": cfg.model.max_length,
        # the flow reads trained_rerank; words_per_label at its default is left out, so earlier keys hold
        "auto": ap.model_dump(exclude={"trained_rerank", *(["words_per_label"] if ap.words_per_label == 1 else [])}),
        "search": SEARCH_VERSION,
    })
    folder = cfg.work_path / "search" / "auto_prompts" / key
    if is_done(folder):
        return dict(read_done(folder), cached=True)
    make = _model_factory(cfg)
    dev = read_examples(data["dev"].path) if "dev" in data else None
    # the stage is silent for a minute or more on a CPU: say what it is doing, on how much
    prior = prior_texts(cfg, data)
    logger().info("choosing prompts: %d candidate templates%s, zero-shot scored on %d %s examples and %d prior texts",
                  len(templates), "" if cfg.verbalizer.label_words else (
                      " and their label words" if searches_label_words(cfg.labels, None, ap.search_words,
                                                                       words_used(train + prior))
                      else " with the label names as words"),
                  len(dev) if dev else data["train"].n, "dev" if dev else "training", len(prior))
    result = select_prompts(
        make, cfg.labels, train, dev, prior, templates,
        label_words=cfg.verbalizer.label_words or None,
        num_patterns=len(cfg.patterns) or ap.num_patterns,
        words_per_template=ap.words_per_template, words_per_label=ap.words_per_label, search_words=ap.search_words,
        seed=ap.seed,
        task_templates=_written_for_task(cfg, questions),
    )
    info = dict(result.to_dict(), key=key)
    return dict(publish(folder, lambda tmp: info), cached=False)


@task(name="zero-shot-reference", cache_policy=NO_CACHE)
def zero_shot_reference(cfg: PipelineConfig, data: Splits, templates: list[str], label_words: dict) -> dict:
    """Dev/test metrics of the untrained backbone: calibrated zero-shot ensemble of ``templates``."""
    key = digest({
        "model": model_digest(cfg.resolve(cfg.model.path)), "data": {k: v.digest for k, v in data.items()},
        "templates": templates, "label_words": label_words, "max_length": cfg.model.max_length,
        "prior": [cfg.auto_prompts.prior_texts, cfg.auto_prompts.seed],
    })
    folder = cfg.work_path / "zero_shot" / key
    if is_done(folder):
        return read_done(folder)["metrics"]
    make = _model_factory(cfg)
    prior = prior_texts(cfg, data)
    labels = list(label_words)
    metrics = {}
    for split in EVAL_SPLITS:
        if split not in data:
            continue
        examples = read_examples(data[split].path)
        logits = zero_shot_logits(make, templates, label_words, examples, prior)
        gold = np.array([labels.index(ex.label) for ex in examples])
        met = classification_metrics(logits, gold, len(labels))
        metrics[f"{split}_accuracy"] = met["accuracy"]
        metrics[f"{split}_macro_f1"] = met["macro_f1"]
    publish(folder, lambda tmp: {"metrics": metrics, "templates": templates, "label_words": label_words})
    return metrics
