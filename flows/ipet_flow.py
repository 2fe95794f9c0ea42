"""iPET generations as a pipeline stage (enabled with ``ipet.enabled: true``)."""
from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.runners import run_all
from flows.stages import train_generation
from pet_config.schema import PipelineConfig
from pet_io.atomic import save_npy_atomic
from pet_io.example_files import read_examples, save_examples
from prompt_models.examples import examples_digest, gold_indices
from prompt_models.ipet import build_generation_sets, pseudo_labeled_examples
from prompt_models.training import configure_threads
from tasks import tracking
from tasks.pattern_tasks import load_pattern_model
from tasks.records import PatternModelRef, Splits


@task(name="predict-unlabeled", cache_policy=NO_CACHE, task_run_name="predict-unlabeled-{model.key:.12}")
def predict_unlabeled(cfg: PipelineConfig, model: PatternModelRef, data: Splits) -> str:
    """Label logits of one pattern model on the unlabeled split, stored beside the model (cached)."""
    configure_threads()
    path = Path(model.path) / f"unlabeled_logits_{data['unlabeled'].digest[:16]}.npy"
    if not path.exists():
        pet = load_pattern_model(cfg, model, data["train"].path)
        save_npy_atomic(path, pet.predict_logits(read_examples(data["unlabeled"].path), cfg.pet.train.eval_batch_size))
    return str(path)


def ipet_stage(cfg: PipelineConfig, data: Splits, templates: list[str], models: list[PatternModelRef],
               parent_id: str) -> list[PatternModelRef]:
    """Run ``cfg.ipet.generations`` iPET generations; returns the last generation's models."""
    if "unlabeled" not in data:
        raise ValueError("iPET needs data.unlabeled")
    train = read_examples(data["train"].path)
    labels = cfg.verbalizer_obj().labels
    gold = gold_indices(train, labels)
    unlabeled = read_examples(data["unlabeled"].path)
    for gen in range(1, cfg.ipet.generations + 1):
        calls = [dict(cfg=cfg, model=m, data=data) for m in models]
        logits = [np.load(p) for p in run_all(predict_unlabeled, calls)]
        sets = build_generation_sets(logits, [m.pre_train_accuracy for m in models], gold, gen, cfg.ipet.growth_factor,
                                     cfg.ipet.sample_fraction, cfg.ipet.seed, cfg.pet.ensemble_weighting)
        extra = {}
        with tracking.stage_run(cfg, parent_id, f"ipet-generation-{gen}", {"generation": str(gen)}):
            for m, added in zip(models, pseudo_labeled_examples(sets, unlabeled, labels, gen)):
                path = cfg.work_path / "ipet" / f"gen{gen}-{examples_digest(added)[:20]}.jsonl"
                save_examples(added, path)
                extra[(m.pattern_index, m.seed)] = str(path)
                mlflow.log_metric(f"added_p{m.pattern_index}_s{m.seed}", len(added))
            mlflow.log_dict({f"p{m.pattern_index}_s{m.seed}": t for m, (t, _, _) in zip(models, sets)}, "teachers.json")
        models = train_generation(cfg, data, templates, parent_id, generation=gen, extra=extra)
    return models
