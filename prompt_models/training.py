"""Shared training plumbing: configs, seeding, batching, metrics."""
from __future__ import annotations

import os
import random
import threading
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch


# transformers builds models under a process-wide meta-device context: two threads loading at
# once (parallel Prefect tasks) can see each other's meta tensors, so loads take turns.
MODEL_LOAD_LOCK = threading.Lock()


@dataclass
class TrainConfig:
    learning_rate: float = 1e-4
    max_steps: int = 200
    batch_size: int = 8
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 128
    eval_batch_size: int = 64
    # auxiliary MLM loss on unlabeled text (PET): loss = (1 - alpha) * CE + alpha * MLM
    mlm_alpha: float = 1e-4
    mlm_probability: float = 0.15
    unlabeled_batch_size: int = 8
    # distillation temperature (sequence classifier on soft labels)
    temperature: float = 2.0
    progress: bool = True  # bars on a terminal only (tqdm disables itself when stderr is not a TTY)

    def __post_init__(self):
        bad = [
            f"{name} must be {rule}, not {getattr(self, name)!r}"
            for name, ok, rule in [
                ("learning_rate", self.learning_rate > 0, "> 0"),
                ("max_steps", self.max_steps >= 1, ">= 1"),
                ("batch_size", self.batch_size >= 1, ">= 1"),
                ("eval_batch_size", self.eval_batch_size >= 1, ">= 1"),
                ("unlabeled_batch_size", self.unlabeled_batch_size >= 1, ">= 1"),
                ("max_length", self.max_length >= 8, ">= 8"),
                ("weight_decay", self.weight_decay >= 0, ">= 0"),
                ("warmup_ratio", 0 <= self.warmup_ratio < 1, "in [0, 1)"),
                ("max_grad_norm", self.max_grad_norm > 0, "> 0"),
                ("mlm_alpha", 0 <= self.mlm_alpha <= 1, "in [0, 1]"),
                ("mlm_probability", 0 < self.mlm_probability < 1, "in (0, 1)"),
                ("temperature", self.temperature > 0, "> 0"),
            ]
            if not ok
        ]
        if bad:
            raise ValueError("; ".join(bad))

    def to_dict(self) -> dict:
        return asdict(self)


# Set when the user asks the run to stop (Ctrl-C): training and inference loops in every thread of
# this process stop at their next step, so a stop takes seconds, not the rest of a training run
STOP = threading.Event()


class StopRequested(Exception):
    """Raised between steps after ``STOP`` was set."""


def check_stop() -> None:
    if STOP.is_set():
        raise StopRequested("stopped on request")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_threads() -> None:
    n = os.environ.get("PET_TORCH_THREADS")
    if n:
        torch.set_num_threads(int(n))


def pick_device(device: str | None = None) -> torch.device:
    if device and device != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        att[i, : len(s)] = 1
    return ids, att


def make_optimizer(params, cfg: TrainConfig, total_steps: int):
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = int(cfg.warmup_ratio * total_steps)

    def schedule(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def batches_forever(n: int, batch_size: int, rng: random.Random):
    """Endless shuffled index batches over n items."""
    if n == 0:
        raise ValueError("cannot draw batches from an empty set")
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]


def mask_tokens(input_ids: torch.Tensor, attention: torch.Tensor, tokenizer, probability: float, gen: torch.Generator):
    """BERT-style masking for the auxiliary MLM loss: labels -100 except at chosen positions."""
    labels = input_ids.clone()
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    for tid in tokenizer.all_special_ids:
        special |= input_ids == tid
    prob = torch.full(input_ids.shape, probability)
    prob.masked_fill_(special | (attention == 0), 0.0)
    chosen = torch.bernoulli(prob, generator=gen).bool()
    if not chosen.any():  # always train on at least one token per batch
        cand = (~special & (attention == 1)).nonzero()
        if len(cand):
            r, c = cand[torch.randint(len(cand), (1,), generator=gen)][0]
            chosen[r, c] = True
    labels[~chosen] = -100
    inputs = input_ids.clone()
    replace = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=gen).bool() & chosen
    inputs[replace] = tokenizer.mask_token_id
    rand = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=gen).bool() & chosen & ~replace
    inputs[rand] = torch.randint(len(tokenizer), input_ids.shape, generator=gen)[rand]
    return inputs, labels


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float((pred == gold).mean()) if len(gold) else 0.0


def macro_f1(pred: np.ndarray, gold: np.ndarray, n_labels: int) -> float:
    f1s = []
    for c in range(n_labels):
        tp = float(((pred == c) & (gold == c)).sum())
        fp = float(((pred == c) & (gold != c)).sum())
        fn = float(((pred != c) & (gold == c)).sum())
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def confusion_matrix(pred: np.ndarray, gold: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts with gold labels as rows and predicted labels as columns."""
    pred, gold = np.asarray(pred, dtype=np.int64), np.asarray(gold, dtype=np.int64)
    return np.bincount(gold * n_labels + pred, minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def classification_metrics(logits: np.ndarray, gold: np.ndarray, n_labels: int) -> dict:
    pred = logits.argmax(-1)
    return {
        "accuracy": accuracy(pred, gold),
        "macro_f1": macro_f1(pred, gold, n_labels),
        "n": int(len(gold)),
        # a nested list, not an array: the result stays JSON-serialisable
        "confusion": confusion_matrix(pred, gold, n_labels).tolist(),
    }
