"""The automatic-prompts stage of the pet flow, the rule for training settings, and the calibrated
zero-shot reference row (flows -> tasks -> prompt_models)."""
from __future__ import annotations

import dataclasses
import time

import mlflow
import numpy as np
import yaml
from prefect import get_run_logger

from prompt_models.auto_settings import suggest_train_settings
from pet_config.schema import PipelineConfig
from tasks import tracking
from tasks.auto_prompt_tasks import backbone_params, choose_prompts, zero_shot_reference
from tasks.promotion import majority_floor
from tasks.records import PatternModelRef, Splits

from flows.stages import train_generation


def auto_prompt_stage(cfg: PipelineConfig, data: Splits, parent_id: str) -> tuple[PipelineConfig, list[str]]:
    """Patterns and/or label words chosen on dev (or a stratified part of train) when the config has none;
    with the templates to train and re-rank (``trained_rerank_stage``)."""
    with tracking.stage_run(cfg, parent_id, "auto-prompts"):
        result = choose_prompts(cfg, data)
        mlflow.log_params({"selection_split": result["selection_split"][:200],
                           "chosen_templates": " | ".join(result["templates"])[:500],
                           "chosen_label_words": str(result["label_words"])[:500],
                           "n_candidates": len(result["candidates"]), "cached": result.get("cached", False),
                           "word_pool": result.get("word_pool", "")[:200]})
        mlflow.log_metric("best_selection_accuracy", result["candidates"][0]["accuracy"])
        mlflow.log_dict(result, "auto_prompts.json")
    cfg = cfg.model_copy(update={"patterns": result["templates"],
                                 "verbalizer": cfg.verbalizer.model_copy(update={"label_words": result["label_words"]})})
    mlflow.log_params({"auto_templates": " | ".join(cfg.patterns)[:500],
                       "auto_label_words": str(cfg.verbalizer.label_words)[:500]})
    words = cfg.verbalizer.label_words
    shown = words if len(words) <= 12 else dict(list(words.items())[:10])  # 50 labels made a 2,000-character line
    more = "" if shown is words else f" and {len(words) - 10} more (auto_prompts.json)"
    # the best template alone: the run's summary gives the kept templates' zero-shot ensemble, another number
    get_run_logger().info("automatic prompts (ranked on %s): %s with %s%s (the best template's calibrated zero-shot "
                          "accuracy there %.3f)", result["selection_split"], cfg.patterns, shown, more,
                          result["template_scores"][0]["accuracy"])
    if swap := result.get("task_template_swap"):
        get_run_logger().info("no dev set to re-rank on: %r, written for this kind of text, takes the place of %r",
                              swap["added"], swap["dropped"])
        mlflow.log_params({"task_template_added": swap["added"][:250], "task_template_dropped": swap["dropped"][:250]})
    if (floor := majority_floor(data, "dev_accuracy")) and (line := prompts_at_chance(result["template_scores"][0], floor)):
        get_run_logger().warning(line)
        mlflow.set_tag("prompts_at_chance", "true")
    if result.get("word_pool", "").startswith("any next word"):
        get_run_logger().warning("label words were searched among all next words, not the text's: %s; give "
                                 "verbalizer.label_words (words of the text's language) if these do not fit",
                                 result["word_pool"])
    return cfg, result.get("trained_candidates") or list(cfg.patterns)


def prompts_at_chance(best: dict, floor: tuple[float, str]) -> str | None:
    """A line when the best candidate prompt untrained scores no better on dev than ``floor`` (``majority_floor``'s
    accuracy and label) (MRPC, CoLA): the ranking then chose among prompts at chance, which the user should know."""
    if best["accuracy"] > floor[0]:
        return None
    return (f"no candidate prompt did better than chance untrained on dev: the best, {best['template']!r}, scored "
            f"{best['accuracy']:.3f}, always answering {floor[1]!r} {floor[0]:.3f}; the backbone reads this task poorly without "
            "training, so the prompts were chosen nearly at random: `patterns` and `verbalizer.label_words` written for "
            "the task may do better")


def keep_best_trained(candidates: list[str], dev_accuracy: dict[str, float], keep: int) -> list[str]:
    """The ``keep`` best of ``candidates`` by trained dev accuracy; a tie keeps the zero-shot order."""
    return sorted(candidates, key=lambda t: (-dev_accuracy[t], candidates.index(t)))[:keep]


def trained_rerank_stage(cfg: PipelineConfig, data: Splits, candidates: list[str],
                         parent_id: str) -> tuple[PipelineConfig, list[PatternModelRef] | None]:
    """LM-BFF's re-ranking where zero-shot scoring may have passed over a template written for this kind of
    text: every candidate is trained as the flow trains its patterns, and the ``len(cfg.patterns)`` best by
    trained dev accuracy (mean over seeds) are kept, with their models. None: nothing to re-rank."""
    searched = cfg.label_word_search.enabled or cfg.template_search.enabled  # they replace the templates
    if not cfg.auto_prompts.trained_rerank or len(candidates) <= len(cfg.patterns) or "dev" not in data or searched:
        return cfg, None
    models = train_generation(cfg, data, candidates, parent_id)
    dev = {t: float(np.mean([m.metrics["dev_accuracy"] for m in models if m.template == t])) for t in candidates}
    kept = keep_best_trained(candidates, dev, len(cfg.patterns))
    client = mlflow.MlflowClient()
    for m in (m for m in models if m.stage_run_id):  # each candidate's stage run: in the ensemble or not, and where
        client.set_tag(m.stage_run_id, "trained_rerank", "kept" if m.template in kept else "dropped")
        if m.template in kept:
            client.set_tag(m.stage_run_id, "ensemble_pattern_index", str(kept.index(m.template)))
    mlflow.log_dict({"candidates": [{"template": t, "zero_shot_order": i + 1, "trained_dev_accuracy": dev[t],
                                     "kept": t in kept} for i, t in enumerate(candidates)]}, "trained_rerank.json")
    mlflow.log_params({"reranked_templates": " | ".join(kept)[:500]})
    get_run_logger().info("trained re-ranking (dev accuracy): %s; kept %s",
                          ", ".join(f"{t!r} {dev[t]:.3f}" for t in candidates), kept)
    models = [dataclasses.replace(m, pattern_index=kept.index(m.template)) for m in models if m.template in kept]
    return cfg.model_copy(update={"patterns": kept}), sorted(models, key=lambda m: (m.pattern_index, m.seed))


def train_settings_stage(cfg: PipelineConfig, data: Splits) -> PipelineConfig:
    """pet.train.max_steps and learning_rate by ``suggest_train_settings`` where the config does not set them."""
    unset = {"max_steps", "learning_rate"} - cfg.pet.train.model_fields_set
    if cfg.auto_prompts.hyperparameters != "rule" or not unset:
        return cfg
    rule = suggest_train_settings(data["train"].n, len(cfg.labels), backbone_params(cfg.resolve(cfg.model.path)),
                                  cfg.pet.train.batch_size, cfg.pet.lora.enabled)
    chosen = {k: rule[k] for k in sorted(unset)}
    mlflow.log_params({f"rule_{k}": v for k, v in chosen.items()})
    get_run_logger().info("training settings by rule (|T|=%d, %d labels): %s", data["train"].n, len(cfg.labels), chosen)
    return cfg.model_copy(update={"pet": cfg.pet.model_copy(update={"train": cfg.pet.train.model_copy(update=chosen)})})


def log_resolved_config(cfg: PipelineConfig) -> None:
    """The config as run (chosen prompts and settings written in): copy it to freeze the choice."""
    d = cfg.to_dict()
    d.pop("base_dir", None)
    mlflow.log_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True), "resolved_config.yaml")


def zero_shot_stage(cfg: PipelineConfig, data: Splits, ensemble_metrics: dict) -> dict:
    """The reference row: calibrated zero-shot accuracy of the untrained backbone with the same prompts,
    and whether the trained ensemble beats it on dev (test where there is no dev)."""
    if not cfg.auto_prompts.zero_shot_reference:
        return {}
    if not {"dev", "test"} & set(data):  # train scores of a model trained on it are no fair comparison
        get_run_logger().info("no dev or test set: the trained ensemble is not compared with calibrated zero-shot scoring")
        return {}
    started = time.perf_counter()
    zs = zero_shot_reference(cfg, data, list(cfg.patterns), cfg.verbalizer.label_words)
    mlflow.log_metrics({**{f"zero_shot_calibrated_{k}": v for k, v in zs.items()},
                        "zero_shot_reference_s": time.perf_counter() - started})
    split = "dev" if "dev_accuracy" in zs else "test"
    beats = ensemble_metrics.get(f"{split}_accuracy", 0.0) > zs.get(f"{split}_accuracy", 0.0)
    mlflow.set_tag("ensemble_beats_zero_shot", str(beats).lower())
    mlflow.log_metric("ensemble_beats_zero_shot", float(beats))
    if not beats:
        get_run_logger().warning("the trained ensemble does not beat calibrated zero-shot scoring on %s (%.3f vs %.3f)",
                                 split, ensemble_metrics.get(f"{split}_accuracy", 0.0), zs[f"{split}_accuracy"])
    return {"metrics": zs, "split": split, "ensemble_beats": beats}
