"""Prefect tasks of the LM-BFF search stages: candidate generation and per-candidate scoring."""
from __future__ import annotations


import mlflow
from prefect import task
from prefect.cache_policies import NO_CACHE

from pet_config.schema import PipelineConfig
from pet_io.atomic import is_done, publish, read_done
from pet_io.digests import digest, model_digest
from pet_io.example_files import read_examples
from prompt_models.backbones import CAUSAL, backbone_kind
from prompt_models.lmbff import generate_templates, load_generator, search_label_words
from prompt_models.pet import PETModel
from prompt_models.training import TrainConfig, configure_threads, pick_device, set_seed
from prompt_models.verbalizer import Verbalizer

from . import tracking
from .caching import train_cfg_key
from .records import Splits


def _eval_split(data: Splits) -> str:
    return "dev" if "dev" in data else "train"


@task(name="generate-template-candidates", cache_policy=NO_CACHE)
def generate_template_candidates(cfg: PipelineConfig, data: Splits) -> list[dict]:
    ts = cfg.template_search
    gen_path = cfg.resolve(ts.generator_path)
    for_causal = backbone_kind(cfg.resolve(cfg.model.path)) == CAUSAL  # keep only templates ending at {mask}
    key = digest(
        {
            "generator": model_digest(gen_path),
            "for_causal": for_causal,
            "train": data["train"].digest,
            "verbalizer": cfg.verbalizer.model_dump(),
            "params": [ts.num_candidates, ts.beam_width, ts.max_new_tokens, ts.examples_per_prompt, ts.seed],
        }
    )
    folder = cfg.work_path / "search" / "template_candidates" / key
    if is_done(folder):
        return read_done(folder)["candidates"]
    configure_threads()
    gen = load_generator(gen_path)
    gen.model.to(pick_device(cfg.model.device))
    candidates = generate_templates(
        gen,
        read_examples(data["train"].path),
        cfg.verbalizer_obj(),
        ts.num_candidates,
        ts.beam_width,
        ts.max_new_tokens,
        ts.examples_per_prompt,
        ts.seed,
        for_causal,
    )
    if not candidates:
        why = " ending at {mask} (the backbone is a causal LM)" if for_causal else ""
        raise ValueError(f"the generator at {gen_path} produced no usable template{why}; try more beams or candidates")
    publish(folder, lambda tmp: {"candidates": candidates})
    return candidates


@task(name="label-word-candidates", cache_policy=NO_CACHE)
def label_word_candidates(cfg: PipelineConfig, data: Splits, template: str) -> list[dict]:
    lw = cfg.label_word_search
    key = digest(
        {
            "model": model_digest(cfg.resolve(cfg.model.path)),
            "train": data["train"].digest,
            "template": template,
            "params": [lw.top_k_per_class, lw.num_candidates, lw.seed, cfg.model.max_length],
        }
    )
    folder = cfg.work_path / "search" / "label_word_candidates" / key
    if is_done(folder):
        return read_done(folder)["candidates"]
    configure_threads()
    model = PETModel.from_pretrained(cfg.resolve(cfg.model.path), template, cfg.verbalizer_obj(), cfg.model.max_length)
    model.to(pick_device(cfg.model.device))
    candidates = search_label_words(
        model, read_examples(data["train"].path), cfg.labels, lw.top_k_per_class, lw.num_candidates, seed=lw.seed
    )
    publish(folder, lambda tmp: {"candidates": candidates})
    return candidates


def score_key(cfg: PipelineConfig, data: Splits, template: str, label_words: dict, train_cfg: TrainConfig, seed: int) -> str:
    return digest(
        {
            "model": model_digest(cfg.resolve(cfg.model.path)),
            "train": data["train"].digest,
            "eval": data[_eval_split(data)].digest,
            "template": template,
            "label_words": label_words,
            "multi_token": cfg.verbalizer.multi_token,
            "max_length": cfg.model.max_length,
            "train_cfg": train_cfg_key(train_cfg),
            "seed": seed,
        }
    )


@task(name="score-prompt", cache_policy=NO_CACHE, task_run_name="score-{kind}-{index}")
def score_prompt(
    cfg: PipelineConfig,
    data: Splits,
    template: str,
    label_words: dict,
    train_cfg: TrainConfig,
    seed: int,
    kind: str,
    index: int,
    parent_run_id: str | None,
) -> dict:
    """Fine-tune briefly with (template, label words) and score on dev (train when there is no dev)."""
    split = _eval_split(data)
    key = score_key(cfg, data, template, label_words, train_cfg, seed)
    folder = cfg.work_path / "search" / "scores" / key
    with tracking.stage_run(cfg, parent_run_id, f"{kind}-candidate-{index}", {"cache_key": key}) as run:
        mlflow.log_params({"template": template, "label_words": str(label_words)[:500], "eval_split": split})
        if is_done(folder):
            info = read_done(folder)
            mlflow.set_tags({"cached": "true", "source_run_id": info["run_id"]})
            mlflow.log_metric(f"{split}_accuracy", info["accuracy"])
            return dict(info, cached=True)
        configure_threads()
        verb = Verbalizer(label_words, cfg.verbalizer.multi_token)
        set_seed(seed)
        model = PETModel.from_pretrained(cfg.resolve(cfg.model.path), template, verb, cfg.model.max_length)
        model.to(pick_device(cfg.model.device))
        model.train_model(read_examples(data["train"].path), train_cfg, seed=seed)
        acc = model.evaluate(read_examples(data[split].path), train_cfg.eval_batch_size)["accuracy"]
        mlflow.log_metric(f"{split}_accuracy", acc)
        info = {"template": template, "label_words": label_words, "accuracy": acc, "split": split, "run_id": run.info.run_id}
        return dict(publish(folder, lambda tmp: info), cached=False)
