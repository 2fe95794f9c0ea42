"""Demonstrations in context (LM-BFF): one (or more) labeled example per class appended to the input.

Each demonstration is the pattern filled with a training example and its label word in place of
the mask. With ``filter='similarity'`` demonstrations are drawn from the most similar training
examples of each class (cosine similarity of mean-pooled encoder states, as LM-BFF does with
SBERT), otherwise uniformly. Choices are deterministic per (query text, seed).
"""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np
import torch

from .examples import InputExample, example_digest
from .verbalizer import Verbalizer


def load_sentence_encoder(path: str):
    """An SBERT-style encoder (e.g. all-minilm-l6-v2) and its tokenizer, for similarity filtering."""
    from transformers import AutoModel

    from .backbones import load_pretrained, load_tokenizer

    return load_pretrained(AutoModel, path, dtype=torch.float32).eval(), load_tokenizer(path)


@torch.no_grad()
def sentence_embeddings(model, tokenizer, examples: Sequence[InputExample], batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """Mean-pooled last hidden states of the model's encoder, L2-normalised."""
    base = getattr(model, "base_model", model)
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        texts = [ex.text_a if not ex.text_b else ex.text_a + " " + ex.text_b for ex in chunk]
        enc = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(dev)
        hidden = base(**enc)[0]
        m = enc["attention_mask"].unsqueeze(-1).float()
        v = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        out.append(torch.nn.functional.normalize(v, dim=-1).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 1), np.float32)


class DemonstrationSampler:
    """Callable: example -> [(demo_example, label_word), ...] with ``per_class`` per label."""

    def __init__(
        self,
        train: Sequence[InputExample],
        verbalizer: Verbalizer,
        per_class: int = 1,
        seed: int = 0,
        embed=None,
        top_fraction: float = 0.5,
    ):
        if per_class < 1:
            raise ValueError("per_class must be at least 1")
        self.verbalizer = verbalizer
        self.per_class = per_class
        self.seed = seed
        self.top_fraction = top_fraction
        self.by_label: dict[str, list[int]] = {lab: [] for lab in verbalizer.labels}
        self.train = list(train)
        for i, ex in enumerate(self.train):
            if ex.label in self.by_label:
                self.by_label[ex.label].append(i)
        empty = [lab for lab, idx in self.by_label.items() if not idx]
        if empty:
            raise ValueError(f"no training example to demonstrate label(s) {empty}")
        self.embed = embed  # callable: list[InputExample] -> np.ndarray of unit vectors, or None
        self.train_vecs = embed(self.train) if embed is not None else None
        self._cache: dict[str, list] = {}

    def __call__(self, example: InputExample) -> list:
        key = example_digest(example)
        if key in self._cache:
            return self._cache[key]
        rng = random.Random(f"{self.seed}:{key}")
        q_vec = self.embed([example])[0] if self.embed is not None else None
        demos = []
        for label in self.verbalizer.labels:
            pool = [i for i in self.by_label[label] if example_digest(self.train[i]) != key] or self.by_label[label]
            if q_vec is not None:
                sims = self.train_vecs[pool] @ q_vec
                keep = max(self.per_class, int(round(len(pool) * self.top_fraction)))
                pool = [pool[j] for j in np.argsort(-sims)[:keep]]
            for i in rng.sample(pool, min(self.per_class, len(pool))):
                demos.append((self.train[i], self.verbalizer.label_words[label][0]))
        rng.shuffle(demos)
        self._cache[key] = demos
        return demos
