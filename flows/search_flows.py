"""LM-BFF search stages: label-word search and template search.

Both run inside the pet flow when enabled in the config (their winners feed PET), or alone as
the ``lmbff-search`` flow (``pet search CONFIG``).
"""
from __future__ import annotations


import mlflow
from prefect import flow, get_run_logger

from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import parent_run, resolve_config
from flows.runners import run_all
from pet_config.schema import ConfigError, PipelineConfig
from tasks import tracking
from tasks.data_tasks import load_and_validate, log_data_inputs
from tasks.records import Splits
from tasks.search_tasks import generate_template_candidates, label_word_candidates, score_prompt


def label_word_search_stage(cfg: PipelineConfig, data: Splits, parent_id: str) -> dict:
    """Best label words: zero-shot pruning on train, then brief fine-tuning ranked on dev."""
    lw = cfg.label_word_search
    template = lw.template or cfg.patterns[0]
    with tracking.stage_run(cfg, parent_id, "label-word-search") as run:
        candidates = label_word_candidates(cfg, data, template)
        mlflow.log_dict({"template": template, "candidates": candidates}, "label_word_candidates.json")
        shortlist = candidates[: lw.rerank_top]
        calls = [
            dict(cfg=cfg, data=data, template=template, label_words=c["label_words"], train_cfg=lw.train.core(),
                 seed=lw.seed, kind="label-words", index=i, parent_run_id=run.info.run_id)
            for i, c in enumerate(shortlist)
        ]
        scores = run_all(score_prompt, calls)
        best = max(scores, key=lambda s: s["accuracy"])
        mlflow.log_dict({"best": best, "scores": scores}, "label_word_search.json")
        mlflow.log_metric("best_accuracy", best["accuracy"])
    get_run_logger().info("label-word search picked %s (%.3f)", best["label_words"], best["accuracy"])
    return best["label_words"]


def template_search_stage(cfg: PipelineConfig, data: Splits, parent_id: str) -> list[str]:
    """Best templates: generated, fine-tuned briefly, ranked on dev; the top ones feed PET."""
    ts = cfg.template_search
    with tracking.stage_run(cfg, parent_id, "template-search", {"generator": str(ts.generator_path)}) as run:
        candidates = generate_template_candidates(cfg, data)
        mlflow.log_dict({"candidates": candidates}, "template_candidates.json")
        calls = [
            dict(cfg=cfg, data=data, template=c["template"], label_words=cfg.verbalizer.label_words,
                 train_cfg=ts.train.core(), seed=ts.seed, kind="template", index=i, parent_run_id=run.info.run_id)
            for i, c in enumerate(candidates)
        ]
        scores = run_all(score_prompt, calls)
        ranked = sorted(scores, key=lambda s: -s["accuracy"])
        best = [s["template"] for s in ranked[: ts.top_templates]]
        mlflow.log_dict({"ranked": ranked, "selected": best}, "template_search.json")
        mlflow.log_metric("best_accuracy", ranked[0]["accuracy"])
    get_run_logger().info("template search picked %s", best)
    return best


def search_stages(cfg: PipelineConfig, data: Splits, parent_id: str) -> tuple[PipelineConfig, list[str]]:
    """Label-word search (if enabled), then template search with those words (if enabled)."""
    if cfg.label_word_search.enabled:
        words = label_word_search_stage(cfg, data, parent_id)
        cfg = cfg.model_copy(update={"verbalizer": cfg.verbalizer.model_copy(update={"label_words": words})})
    templates = list(cfg.patterns)
    if cfg.template_search.enabled:
        templates = template_search_stage(cfg, data, parent_id)
    return cfg, templates


def check_search_config(cfg: PipelineConfig) -> None:
    """What `pet search` needs that `pet run` would choose itself (automatic prompts run only in the pet flow):
    a ConfigError naming it, before any work."""
    if not (cfg.template_search.enabled or cfg.label_word_search.enabled):
        raise ConfigError("enable template_search and/or label_word_search in the config to search")
    if cfg.label_word_search.enabled and not (cfg.label_word_search.template or cfg.patterns):
        raise ConfigError("label_word_search needs a template: set label_word_search.template or one pattern "
                          "(pet search does not choose prompts automatically; pet run does)")
    if cfg.template_search.enabled and not cfg.label_word_search.enabled and not cfg.verbalizer.label_words:
        raise ConfigError("template_search needs label words: set verbalizer.label_words or enable "
                          "label_word_search (pet search does not choose prompts automatically; pet run does)")


@flow(name="lmbff-search", task_runner=ThreadPoolTaskRunner(max_workers=1))
def search_flow(config_path: str, overrides: dict | None = None) -> dict:
    cfg = resolve_config(config_path, overrides)
    check_search_config(cfg)
    with parent_run(cfg, "lmbff-search") as parent:
        pid = parent.info.run_id
        data = load_and_validate(cfg)
        log_data_inputs(data, ["train", "dev"])
        searched, templates = search_stages(cfg, data, pid)
        result = {"mlflow_run_id": pid, "label_words": searched.verbalizer.label_words, "templates": templates}
        mlflow.log_dict(result, "search_result.json")
        return result
