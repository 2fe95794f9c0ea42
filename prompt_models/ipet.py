"""iPET: iterative PET (Schick & Schütze 2021, section 4).

In generation g each model j gets a new training set: the labeled set plus unlabeled examples
labeled by the merged logits of a random subset of the *other* models of generation g-1. The
added set grows by a factor (5 in the paper) each generation: ``|T_g| = |T| * factor^g``, kept in
the labeled set's label ratio, each example drawn with probability proportional to the subset's
confidence in its label.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Sequence

import numpy as np

from .ensemble import ensemble_weights, merge_logits, softmax
from .examples import InputExample


def pick_teachers(n_models: int, student: int, fraction: float, rng: random.Random) -> list[int]:
    """A random subset (at least one) of the models other than ``student``."""
    others = [i for i in range(n_models) if i != student]
    if not others:
        raise ValueError("iPET needs at least two models")
    k = max(1, int(round(fraction * len(others))))
    return sorted(rng.sample(others, min(k, len(others))))


def added_examples_count(n_labeled: int, generation: int, factor: int) -> int:
    """How many pseudo-labeled examples generation ``generation`` (1-based) adds."""
    return n_labeled * factor**generation - n_labeled


def select_pseudo_labeled(
    logits: np.ndarray,
    n_total: int,
    label_distribution: dict[int, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose ``n_total`` rows of ``logits`` [N, L]: per label in the given proportions, among the
    rows predicted as that label, with probability proportional to the predicted probability.
    Returns (indices, labels)."""
    probs = softmax(logits)
    pred = probs.argmax(-1)
    idx_out, lab_out = [], []
    labels = sorted(label_distribution)
    quotas = {lab: int(round(n_total * label_distribution[lab])) for lab in labels}
    for lab in labels:
        cand = np.flatnonzero(pred == lab)
        k = min(quotas[lab], len(cand))
        if k == 0:
            continue
        p = probs[cand, lab].astype(np.float64)
        p = p / p.sum()
        chosen = rng.choice(cand, size=k, replace=False, p=p)
        idx_out.append(chosen)
        lab_out.append(np.full(k, lab))
    if not idx_out:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return np.concatenate(idx_out), np.concatenate(lab_out)


def label_distribution(gold: Sequence[int]) -> dict[int, float]:
    counts = Counter(int(g) for g in gold)
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def build_generation_sets(
    unlabeled_logits: Sequence[np.ndarray],
    pre_train_accuracies: Sequence[float],
    gold_train: Sequence[int],
    generation: int,
    factor: int = 5,
    fraction: float = 0.25,
    seed: int = 0,
    weighting: str = "accuracy",
) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
    """For every model of the previous generation: (teachers, unlabeled indices, labels)."""
    n = len(unlabeled_logits)
    rng = random.Random(seed * 1000 + generation)
    n_add = added_examples_count(len(gold_train), generation, factor)
    dist = label_distribution(gold_train)
    out = []
    for j in range(n):
        teachers = pick_teachers(n, j, fraction, rng)
        w = ensemble_weights([pre_train_accuracies[t] for t in teachers], weighting)
        merged = merge_logits([unlabeled_logits[t] for t in teachers], w)
        idx, labs = select_pseudo_labeled(merged, n_add, dist, np.random.default_rng(rng.randrange(2**32)))
        out.append((teachers, idx, labs))
    return out


def pseudo_labeled_examples(sets: Sequence[tuple[list[int], np.ndarray, np.ndarray]], unlabeled: Sequence[InputExample],
                            labels: Sequence[str], generation: int) -> list[list[InputExample]]:
    """The examples ``build_generation_sets`` chose for each new model, with the teachers' labels;
    the new model trains on the labeled set plus these."""
    return [
        [InputExample(unlabeled[i].text_a, unlabeled[i].text_b, labels[lab], f"ipet{generation}-{i}")
         for i, lab in zip(idx.tolist(), labs.tolist())]
        for _, idx, labs in sets
    ]
