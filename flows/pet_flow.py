"""The PET flow and the relabel flow.

pet:      load + validate data -> [automatic prompts] -> [trained re-ranking: the chosen templates and one
          written for the task, best kept on dev] -> [label-word search] -> [template search] -> train each
          (pattern, seed) -> [iPET generations] -> evaluate ensemble (+ calibrated zero-shot reference)
          -> soft-label unlabeled shards -> distill on every soft label of the ensemble -> evaluate
          -> register -> promote to ``champion`` if at least as good as the current one (else ``challenger``)
relabel:  soft-label only the NEW unlabeled texts with the existing ensemble, re-distill on all
          soft labels the ensemble has produced, evaluate, register.
"""
from __future__ import annotations

import time

import mlflow
from prefect import flow, get_run_logger

from prefect.task_runners import ThreadPoolTaskRunner

from tasks.data_tasks import load_and_validate, log_data_inputs, report_overlaps
from tasks.figures import log_accuracy_chart
from tasks.promotion import below_majority, below_zero_shot, student_gap
from tasks.records import EnsembleManifest
from tasks.label_tasks import ensemble_key, evaluate_ensemble, labeled_digests, make_shards, model_weights

from flows.hooks import notify_failure
from flows.common import current_flow_run_id, parent_run, pipeline_slot, read_manifest, resolve_config, write_manifest
from flows.stages import label_and_distill, train_generation
from flows.auto_stage import (
    auto_prompt_stage, log_resolved_config, train_settings_stage, trained_rerank_stage, zero_shot_stage,
)

# one task at a time unless the caller picks the config's runner: flows.runners.with_runner(pet_flow, cfg)
ONE_AT_A_TIME = ThreadPoolTaskRunner(max_workers=1)


@flow(name="pet", task_runner=ONE_AT_A_TIME, on_failure=[notify_failure], on_crashed=[notify_failure])
def pet_flow(config_path: str, overrides: dict | None = None) -> dict:
    cfg = resolve_config(config_path, overrides)
    if cfg.data.unlabeled is None:
        raise ValueError("the pet flow needs data.unlabeled: the ensemble soft-labels it for distillation")
    log = get_run_logger()
    t0 = time.time()
    with pipeline_slot(cfg, log), parent_run(cfg, "pet") as parent:
        pid = parent.info.run_id
        data = load_and_validate(cfg)
        log_data_inputs(data)
        overlap = report_overlaps(data)
        mlflow.log_metrics({f"n_{k}": v.n for k, v in data.items()})

        candidates: list[str] = []
        if cfg.needs_auto_prompts:
            cfg, candidates = auto_prompt_stage(cfg, data, pid)
        cfg = train_settings_stage(cfg, data)
        cfg, models = trained_rerank_stage(cfg, data, candidates, pid)  # None: no template to re-rank
        log_resolved_config(cfg)
        templates = list(cfg.patterns)
        if cfg.label_word_search.enabled or cfg.template_search.enabled:
            from flows.search_flows import search_stages

            cfg, templates = search_stages(cfg, data, pid)
        models = models or train_generation(cfg, data, templates, pid)
        if cfg.ipet.enabled:
            from flows.ipet_flow import ipet_stage

            models = ipet_stage(cfg, data, templates, models, pid)

        ensemble = evaluate_ensemble(cfg, data, models, pid)
        reference = zero_shot_stage(cfg, data, ensemble)
        ens_key = ensemble_key(models, cfg.pet.ensemble_weighting, cfg.pet.temperature)
        write_manifest(cfg, EnsembleManifest(
            ensemble_key=ens_key,
            models=models,
            weights=model_weights(cfg, models),
            weighting=cfg.pet.ensemble_weighting,
            temperature=cfg.pet.temperature,
            verbalizer=cfg.verbalizer.model_dump(),
            templates=templates,
            mlflow_run_id=pid,
            prefect_flow_run_id=current_flow_run_id(),
        ))
        shards = make_shards(cfg, data["unlabeled"].path)
        # every soft label this ensemble has made (relabeled data too): a scheduled run never
        # distills on less than the last relabel did
        result = label_and_distill(cfg, data, models, shards, ens_key, pid, all_shards=True)
        overlap += result.pop("split_overlaps_earlier")
        weak = below_majority(data, {"the ensemble": ensemble, "the classifier": result["classifier_metrics"]})
        weak += student_gap(cfg, ensemble, result["classifier_metrics"])
        weak += below_zero_shot(reference, result["classifier_metrics"])
        summary = {
            "mlflow_run_id": pid,
            "ensemble_key": ens_key,
            "templates": templates,
            "pattern_models": [{k: getattr(m, k) for k in ("key", "template", "seed", "generation", "cached", "metrics")}
                               for m in models],
            "ensemble_metrics": {k: v for k, v in ensemble.items() if k != "weights"},
            "zero_shot_calibrated": reference,
            "label_words": cfg.verbalizer.label_words,
            "split_overlaps": overlap,
            "quality_warnings": weak,
            "seconds": round(time.time() - t0, 1),
            **result,
        }
        mlflow.log_metrics({f"ensemble_{k}": v for k, v in summary["ensemble_metrics"].items()})
        mlflow.log_metrics({f"classifier_{k}": v for k, v in result["classifier_metrics"].items()})
        mlflow.log_metric("pattern_models_cached", sum(m.cached for m in models))
        log_accuracy_chart(summary["pattern_models"], summary["ensemble_metrics"], result["classifier_metrics"])
        mlflow.log_dict(summary, "summary.json")
        log.info("pet flow done in %.0f s", summary["seconds"])
        return summary


@flow(name="relabel", task_runner=ONE_AT_A_TIME, on_failure=[notify_failure], on_crashed=[notify_failure])
def relabel_flow(config_path: str, unlabeled_path: str | None = None, overrides: dict | None = None) -> dict:
    """Soft-label only unlabeled texts the ensemble has not seen, then re-distill and register."""
    cfg = resolve_config(config_path, overrides)
    if unlabeled_path:
        cfg = cfg.with_unlabeled(unlabeled_path)  # in the configured unlabeled (or training) columns
    if cfg.data.unlabeled is None:
        raise ValueError("relabel needs new unlabeled data: pass unlabeled_path or set data.unlabeled")
    read_manifest(cfg)  # no ensemble yet: fail before any run is opened
    log = get_run_logger()
    with pipeline_slot(cfg, log), parent_run(cfg, "relabel") as parent:
        manifest = read_manifest(cfg)  # read inside the slot: a pet run may have just replaced it
        pid = parent.info.run_id
        mlflow.set_tags({"ensemble_key": manifest.ensemble_key, "ensemble_source_run_id": manifest.mlflow_run_id})
        data = load_and_validate(cfg)
        log_data_inputs(data, ["unlabeled", "dev", "test"])
        overlap = report_overlaps(data)
        ens_key = manifest.ensemble_key
        # label with the ensemble as it was built, whatever the config says today: one label store,
        # one verbalizer, one weighting, one temperature
        pet = cfg.pet.model_copy(update={"ensemble_weighting": manifest.weighting, "temperature": manifest.temperature})
        cfg = cfg.model_copy(update={"pet": pet, "verbalizer": cfg.verbalizer.model_copy(update=manifest.verbalizer)})
        seen = labeled_digests(cfg, ens_key)
        shards = make_shards(cfg, data["unlabeled"].path, sorted(seen))
        n_new = sum(s.n for s in shards)
        mlflow.log_metrics({"n_new_unlabeled": n_new, "n_previously_labeled": len(seen)})
        if n_new == 0:
            log.info("relabel: no new unlabeled texts; the registered classifier stays as it is")
            return {"mlflow_run_id": pid, "n_new": 0, "registered": None, "split_overlaps": overlap}
        result = label_and_distill(cfg, data, manifest.models, shards, ens_key, pid, all_shards=True)
        overlap += result.pop("split_overlaps_earlier")
        mlflow.log_metrics({f"classifier_{k}": v for k, v in result["classifier_metrics"].items()})
        summary = {"mlflow_run_id": pid, "ensemble_key": ens_key, "n_new": n_new, "split_overlaps": overlap, **result}
        mlflow.log_dict(summary, "summary.json")
        return summary
