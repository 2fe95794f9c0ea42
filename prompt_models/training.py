"""Shared training plumbing: configs, seeding, batching, the one optimisation loop, metrics."""
from __future__ import annotations

import os
import random
import threading
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm


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


def make_optimizer(params, cfg: TrainConfig, total_steps: int):
    # transformers' names are imported on use: they cost seconds, and reading a config (``pet
    # validate``, a bad-input error) imports this module for TrainConfig
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in params if p.requires_grad]
    # fused: one vectorised kernel over all the tensors. torch's CPU default steps them one by one: that took
    # 0.81 s of a 4.0 s SmolLM2 step and 4.3 s of a 10 s Gemma step here, fused 0.11 s and 0.32 s, with the
    # same parameters to 6e-8 (benchmarks/train_step_profile.py)
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused)
    return opt, get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total_steps), total_steps)


def train_steps(params, cfg: TrainConfig, step_loss: Callable[[], torch.Tensor], desc: str,
                log_fn: Callable[[dict, int], None] | None = None, log_key: str = "train_loss") -> dict:
    """The one optimisation loop (pattern models and the distilled classifier): ``cfg.max_steps``
    steps of AdamW on ``step_loss()`` with gradient clipping and a linear schedule.

    Not ``transformers.Trainer``: a step here draws from two data streams (labeled batches and, for
    PET's auxiliary LM loss, unlabeled ones), every step checks the process-wide stop flag so a
    Ctrl-C stops all parallel tasks within a step, runs are a few hundred steps with no checkpoints
    (a finished model is published whole under its content digest), and MLflow logging goes to the
    task's own nested run; the Trainer's epochs, checkpoints, accelerate and reporting would be
    bent around all four for a loop of ten lines."""
    params = [p for p in params if p.requires_grad]
    opt, sched = make_optimizer(params, cfg, cfg.max_steps)
    losses: list[float] = []
    bar = tqdm(range(cfg.max_steps), desc=desc, disable=None if cfg.progress else True, leave=False)
    for step in bar:
        check_stop()
        loss = step_loss()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 10 == 0:
            recent = float(np.mean(losses[-10:]))
            bar.set_postfix(loss=f"{recent:.4f}")
            if log_fn:
                log_fn({log_key: recent}, step)
    return {"final_loss": float(np.mean(losses[-10:])), "steps": cfg.max_steps}


def batches_forever(n: int, batch_size: int, rng: random.Random):
    """Endless shuffled index batches over n items."""
    if n == 0:
        raise ValueError("cannot draw batches from an empty set")
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]


def mlm_collator(tokenizer, probability: float, gen: torch.Generator):
    """transformers' BERT-style masking (of the chosen tokens 80% [MASK], 10% random, 10% kept;
    special and padded positions never chosen), drawing from ``gen``. The generator is handed over
    outright: the collator's own ``seed`` treats 0 as "no seed" (global RNG) and refuses to seed in
    a worker process (Dask)."""
    from transformers import DataCollatorForLanguageModeling  # on use, as in make_optimizer

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability)
    collator.generator = gen
    return collator


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
