"""Champion / challenger: a newly registered classifier takes the champion alias only if it is at
least as good as the current champion on the same held-out split.

The champion is re-scored on today's split file (its classifier folder is found by the version's
``classifier_key`` tag), so a changed dev/test file never compares new numbers with stale ones.
When the champion's folder is gone, its recorded metric is used only if it was measured on a file
with the same content digest; otherwise the new classifier is promoted and the reason logged.
A classifier no better than always answering the split's most frequent label is never the champion,
not even the first: served unattended, it would look like a model and be a constant.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import mlflow
import numpy as np

from pet_config.schema import PipelineConfig
from pet_io.atomic import is_done
from pet_io.example_files import read_examples
from prompt_models.auto_settings import gold_in_distillation
from prompt_models.distill import SequenceClassifier
from prompt_models.training import accuracy, macro_f1, pick_device

from .data_tasks import logger
from .records import Splits


@dataclass
class Promotion:
    promoted: bool
    alias: str  # the alias the new version got
    metric: str | None
    new_score: float | None
    champion_version: str | None  # the champion before this decision
    champion_score: float | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _champion(client, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:  # no such alias (first registration) or no such model
        return None


def _score_champion(cfg: PipelineConfig, data: Splits, champion, metric: str) -> tuple[float | None, str]:
    split = metric.split("_", 1)[0]
    folder = cfg.work_path / "classifiers" / champion.tags.get("classifier_key", "-")
    if is_done(folder):
        clf = SequenceClassifier.load(folder / "model")
        clf.model.to(pick_device(cfg.model.device))
        m = clf.evaluate(read_examples(data[split].path), cfg.pet.train.eval_batch_size)
        return m[metric.split("_", 1)[1]], f"champion re-scored on the current {split} file"
    if champion.tags.get(f"data_digest.{split}") == data[split].digest and f"metric.{metric}" in champion.tags:
        return float(champion.tags[f"metric.{metric}"]), f"champion's recorded {metric} on the same {split} file"
    return None, f"the champion's classifier folder is gone and its {metric} was measured on another {split} file"


def majority_floor(data: Splits, metric: str) -> tuple[float, str] | None:
    """The metric of always answering the split's most frequent label, and that label."""
    split, measure = metric.split("_", 1)
    if split not in data:
        return None
    labels = [ex.label for ex in read_examples(data[split].path)]
    names = sorted(set(labels))
    if len(names) < 2:  # one label: every right answer is that answer, and the floor would refuse a perfect score
        return None
    gold = np.array([names.index(lab) for lab in labels])
    top = names.index(Counter(labels).most_common(1)[0][0])
    pred = np.full_like(gold, top)
    score = accuracy(pred, gold) if measure == "accuracy" else macro_f1(pred, gold, len(names))
    return score, names[top]


def no_better_than(what: str, score: float, floor: tuple[float, str], digits: int) -> str:
    """The line for a score at or under ``majority_floor``'s (score, label): the summary's and promotion's."""
    return f"{what} {score:.{digits}f} is no better than always answering {floor[1]!r} ({floor[0]:.{digits}f})"


def below_majority(data: Splits, scored: dict[str, dict]) -> list[str]:
    """A line for each of ``scored`` ({"the classifier": metrics, ...}) whose dev or test accuracy is no better
    than always answering that split's most frequent label: a reference only, nothing is decided on test."""
    lines = []
    for split in ("dev", "test"):
        floor = majority_floor(data, f"{split}_accuracy")
        if floor is None:
            continue
        mlflow.log_metric(f"majority_{split}_accuracy", floor[0])
        lines += [no_better_than(f"{who}'s {split} accuracy", m[f"{split}_accuracy"], floor, 3) for who, m in scored.items()
                  if f"{split}_accuracy" in m and m[f"{split}_accuracy"] <= floor[0]]
    for line in lines:
        logger().warning(line)
    return lines


STUDENT_GAP = 0.10  # dev accuracy the classifier may trail the ensemble by before the run says so


def student_gap(cfg: PipelineConfig, ensemble: dict, classifier: dict) -> list[str]:
    """A line when the served classifier trails its teacher ensemble by over ``STUDENT_GAP`` on dev, with the
    one remedy measured: the labeled examples in distillation (TREC-50, dev 0.164 -> 0.427, RESULTS.md)."""
    gap = ensemble.get("dev_accuracy", 0.0) - classifier.get("dev_accuracy", 1.0)
    if gap <= STUDENT_GAP:
        return []
    # the remedy is named only where it was measured to help (3+ labels) and the config turned it off
    remedy = not cfg.distill.with_train and gold_in_distillation(len(cfg.labels))
    line = f"the classifier trails the ensemble by {gap:.3f} on dev" + (
        "; distill.with_train: true (the labeled examples join the soft labels) closed most of such a gap on 50 labels"
        if remedy else "")
    logger().warning(line)
    return [line]


def below_zero_shot(reference: dict, classifier: dict) -> list[str]:
    """A line when the served classifier's dev (else test) accuracy is below calibrated zero-shot scoring's, the
    untrained backbone with the same prompts (``reference``: ``flows.auto_stage.zero_shot_stage``'s record). Only
    said, and the split tagged: zero-shot scoring is no servable model, and on dev its score is optimistic (the
    prompts were chosen there: mpqa's classifier was below it on dev, 0.688 against 0.781, and above on test)."""
    split, zs = reference.get("split"), reference.get("metrics") or {}
    key = f"{split}_accuracy"
    if key not in zs or key not in classifier or classifier[key] >= zs[key]:
        return []
    line = f"the classifier's {split} accuracy {classifier[key]:.3f} is below calibrated zero-shot scoring's {zs[key]:.3f}"
    if split == "dev":
        line += " (the untrained backbone with these prompts, chosen on this dev set: its score there is optimistic)"
    mlflow.set_tag("classifier_below_zero_shot", split)
    logger().warning(line)
    return [line]


def decide(cfg: PipelineConfig, data: Splits, client, version: str, metrics: dict) -> Promotion:
    """Move the champion alias to ``version`` or give it the challenger alias; returns the decision."""
    name, alias, challenger = cfg.tracking.registered_model, cfg.tracking.alias, cfg.tracking.challenger_alias
    metric = cfg.promotion_metric()
    champion = _champion(client, name, alias)
    new_score = metrics.get(metric) if metric else None
    floor = majority_floor(data, metric) if metric and new_score is not None and cfg.tracking.beat_majority else None
    if floor is not None and new_score <= floor[0] and not (champion and str(champion.version) == version):
        decision = Promotion(False, challenger, metric, new_score, champion and str(champion.version), None,
                             no_better_than(metric, new_score, floor, 4)
                             + f": not promoted (`pet predict --alias {challenger}` uses it)")
    elif champion is None:
        decision = Promotion(True, alias, metric, new_score, None, None, "no other champion")
    elif str(champion.version) == version:  # an identical classifier registered again reuses its version
        decision = Promotion(True, alias, metric, new_score, version, None,
                             f"v{version} is already the champion (the same classifier, reused)")
    elif metric is None:
        decision = Promotion(True, alias, None, None, str(champion.version), None, "no held-out split to compare on")
    else:
        score, how = _score_champion(cfg, data, champion, metric)
        if score is None:
            decision = Promotion(True, alias, metric, new_score, str(champion.version), None, how + ": promoted")
        else:
            margin = cfg.tracking.promote_margin
            won = new_score >= score + margin
            verdict = ">=" if won else "<"
            reason = f"{metric} {new_score:.4f} {verdict} champion {score:.4f} + margin {margin} ({how})"
            decision = Promotion(won, alias if won else challenger, metric, new_score, str(champion.version), score, reason)
    client.set_registered_model_alias(name, decision.alias, version)
    if decision.promoted:
        try:  # the new champion is nobody's challenger
            if str(client.get_model_version_by_alias(name, challenger).version) == version:
                client.delete_registered_model_alias(name, challenger)
        except mlflow.exceptions.MlflowException:
            pass
    return decision
