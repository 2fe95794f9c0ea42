"""SetFit's first step for the student (Tunstall et al., 2022): before the student learns the soft labels,
its encoder is tuned so that two labeled examples' mean-pooled embeddings have cosine 1 when they share a
label and 0 when they do not.

Written on ``training.train_steps`` rather than with sentence-transformers' trainer: the tuned encoder is the
student's own (an ``AutoModelForSequenceClassification`` whose head distillation trains next), and the one
loop keeps Ctrl-C, MLflow logging and threads as every other stage has them.
"""
from __future__ import annotations

import math
import random
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .backbones import autocast
from .examples import InputExample
from .training import TrainConfig, batches_forever, set_seed, train_steps

# SetFit 1.x defaults: body learning rate 2e-5, batch 16 pairs, one epoch over the pairs, warmup 0.1, pair seed 42
PAIR_LEARNING_RATE, PAIR_BATCH_SIZE, PAIR_WARMUP, PAIRS_SEED = 2e-5, 16, 0.1, 42
MAX_PAIR_STEPS = 500  # one epoch of SetFit's pairs is 480 steps on 6 labels x 16; more labels or examples are capped
PAIR_SETTINGS = {"lr": PAIR_LEARNING_RATE, "batch": PAIR_BATCH_SIZE, "warmup": PAIR_WARMUP, "pairs_seed": PAIRS_SEED,
                 "max_steps": MAX_PAIR_STEPS}  # in the student's cache key (tasks/classifier_tasks.classifier_key)


def contrastive_pairs(gold: Sequence[int], seed: int = PAIRS_SEED) -> list[tuple[int, int, float]]:
    """SetFit's "oversampling" pairs: every pair (i <= j) once in a seeded shuffle, split into same label
    (target 1) and different label (target 0); the rarer kind is repeated in order until both kinds are as
    many, and they alternate. [(i, j, target)]"""
    ii, jj = np.triu_indices(len(gold))
    order = np.random.RandomState(seed).permutation(len(ii))
    pos = [(int(ii[k]), int(jj[k])) for k in order if gold[ii[k]] == gold[jj[k]]]
    neg = [(int(ii[k]), int(jj[k])) for k in order if gold[ii[k]] != gold[jj[k]]]
    pairs = []
    for k in range(max(len(pos), len(neg))):
        pairs += [(*pos[k % len(pos)], 1.0)] if pos else []
        pairs += [(*neg[k % len(neg)], 0.0)] if neg else []
    return pairs


def pair_train_cfg(n_pairs: int) -> TrainConfig:
    steps = min(math.ceil(n_pairs / PAIR_BATCH_SIZE), MAX_PAIR_STEPS)
    return TrainConfig(learning_rate=PAIR_LEARNING_RATE, max_steps=max(steps, 1), batch_size=PAIR_BATCH_SIZE,
                       warmup_ratio=PAIR_WARMUP, progress=False)


def mean_pooled(encoder, batch: dict) -> torch.Tensor:
    """Masked mean of the encoder's last hidden states: [B, T, H] -> [B, H] (SBERT's pooling)."""
    states = encoder(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                     ).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


def tune_on_pairs(clf, examples: Sequence[InputExample], gold: Sequence[int], seed: int = 0,
                  log_fn: Callable[[dict, int], None] | None = None, cfg: TrainConfig | None = None) -> dict:
    """Tune ``clf``'s encoder (``SequenceClassifier``) on SetFit's pairs of ``examples`` with the cosine loss
    (MSE between cos(u, v) and the pair's target); its head is left as it is. ``cfg``: SetFit's defaults."""
    pairs = contrastive_pairs(gold)
    if not pairs:
        return {"steps": 0, "n_pairs": 0}
    cfg = cfg or pair_train_cfg(len(pairs))
    set_seed(seed)
    it = batches_forever(len(pairs), cfg.batch_size, random.Random(seed))
    encoder = clf.model.base_model  # BertModel under BertForSequenceClassification, and so on
    dev = next(clf.model.parameters()).device
    clf.model.train()

    def step_loss() -> torch.Tensor:
        batch = [pairs[k] for k in next(it)]
        with autocast(dev):
            u = mean_pooled(encoder, clf.batch([examples[i] for i, _, _ in batch]))  # [B, H]
            v = mean_pooled(encoder, clf.batch([examples[j] for _, j, _ in batch]))  # [B, H]
        target = torch.tensor([t for _, _, t in batch], device=dev)
        return F.mse_loss(F.cosine_similarity(u.float(), v.float()), target)

    fit = train_steps(encoder.parameters(), cfg, step_loss, "pairs", log_fn, "pair_loss")
    clf.model.eval()
    return dict(fit, n_pairs=len(pairs))
