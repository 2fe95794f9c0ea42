"""The stages the pet, relabel and iPET flows share: train a generation of pattern models, and
soft-label -> distill -> evaluate -> register."""
from __future__ import annotations

import dataclasses

import mlflow

from flows.common import current_flow_run_id
from flows.runners import run_all
from pet_config.schema import PipelineConfig
from pet_io.atomic import is_done
from tasks import tracking
from tasks.classifier_tasks import distill, evaluate_classifier, register_classifier
from tasks.data_tasks import log_data_inputs, report_earlier_overlaps
from tasks.label_tasks import label_store, label_with_model, merge_shard
from tasks.pattern_tasks import train_pattern_model
from tasks.records import LabeledShard, PatternModelRef, Shard, Splits


def train_generation(cfg: PipelineConfig, data: Splits, templates: list[str], parent_id: str,
                     generation: int = 0, extra: dict | None = None) -> list[PatternModelRef]:
    """One pattern model per (pattern, seed), trained in parallel on the flow's task runner."""
    calls = [
        dict(cfg=cfg, data=data, template=template, pattern_index=p_idx, seed=seed, parent_run_id=parent_id,
             generation=generation, extra_train_path=(extra or {}).get((p_idx, seed)))
        for p_idx, template in enumerate(templates)
        for seed in cfg.seeds
    ]
    return run_all(train_pattern_model, calls)


def soft_label(cfg: PipelineConfig, data: Splits, models: list[PatternModelRef], shards: list[Shard], ens_key: str,
               parent_id: str) -> list[LabeledShard]:
    """Model-major: each pattern model loaded once labels every pending shard; then merge per shard."""
    with tracking.stage_run(cfg, parent_id, "soft-label", {"ensemble_key": ens_key}) as sl:
        mlflow.log_params({"n_shards": len(shards), "n_models": len(models), "temperature": cfg.pet.temperature})
        if "unlabeled" in data:
            log_data_inputs(data, ["unlabeled"])
        pending = [s for s in shards if not is_done(label_store(cfg, ens_key) / s.digest)]
        per_model = run_all(label_with_model, [
            dict(cfg=cfg, model=m, shards=pending, train_path=data["train"].path, stage_run_id=sl.info.run_id)
            for m in models
        ])
        labeled = run_all(merge_shard, [dict(cfg=cfg, shard=s, models=models, ens_key=ens_key) for s in shards])
        mlflow.log_metrics({
            "shards_cached": sum(s.cached for s in labeled),
            "model_loads": sum(r.shards_computed > 0 for r in per_model),
            "model_shard_pairs_computed": sum(r.shards_computed for r in per_model),
        })
    return labeled


def label_and_distill(cfg: PipelineConfig, data: Splits, models: list[PatternModelRef], shards: list[Shard],
                      ens_key: str, parent_id: str, all_shards: bool) -> dict:
    """Soft-label ``shards``, distill (on every shard in the store if ``all_shards``), evaluate, register."""
    labeled = soft_label(cfg, data, models, shards, ens_key, parent_id)
    earlier: list[str] = []
    if all_shards:
        store = label_store(cfg, ens_key)
        labeled = [LabeledShard.from_done(d) for d in sorted(store.iterdir()) if is_done(d)]
        # texts an earlier relabel added are distilled on too: the flow checked only this run's file
        now = {s.digest for s in shards}
        earlier = report_earlier_overlaps(data, [s.path for s in labeled
                                                 if s.digest not in now and s.path.endswith(".parquet")])
    classifier = distill(cfg, labeled, ens_key, parent_id, data.get("train"))
    metrics = evaluate_classifier(cfg, data, classifier, parent_id)
    registered = register_classifier(cfg, data, classifier, metrics, parent_id, current_flow_run_id())
    # the flow's result is plain JSON (printed by `pet run --json`, stored as summary.json)
    return {"classifier": dataclasses.asdict(classifier), "classifier_metrics": metrics,
            "registered": dataclasses.asdict(registered), "n_soft_labeled": sum(s.n for s in labeled),
            "split_overlaps_earlier": earlier}
