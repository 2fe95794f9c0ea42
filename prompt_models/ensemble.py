"""Merging pattern models into soft labels (PET ensemble step)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def ensemble_weights(pre_train_accuracies: Sequence[float], scheme: str = "accuracy") -> np.ndarray:
    """Normalised model weights.

    ``accuracy`` (PET default): each model counts in proportion to its pattern's accuracy on the
    labeled set *before* training. When every accuracy is zero (or the scheme is ``uniform``) all
    models count the same, instead of dividing by zero.
    """
    acc = np.asarray(pre_train_accuracies, dtype=np.float64)
    if acc.ndim != 1 or len(acc) == 0:
        raise ValueError("need one accuracy per model, and at least one model")
    if np.any(~np.isfinite(acc)) or np.any(acc < 0):
        raise ValueError(f"accuracies must be finite and non-negative, got {acc.tolist()}")
    if scheme not in ("accuracy", "uniform"):
        raise ValueError(f"unknown weighting scheme {scheme!r}; use 'accuracy' or 'uniform'")
    if scheme == "uniform" or acc.sum() == 0:
        return np.full(len(acc), 1.0 / len(acc))
    return acc / acc.sum()


def merge_logits(logits: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted average of the models' label logits, each [N, L]."""
    if len(logits) != len(weights):
        raise ValueError(f"{len(logits)} logit arrays but {len(weights)} weights")
    if not logits:
        raise ValueError("nothing to merge")
    shapes = {np.asarray(x).shape for x in logits}
    if len(shapes) != 1:
        raise ValueError(f"logit arrays differ in shape: {sorted(shapes)}")
    w = np.asarray(weights, dtype=np.float64)
    stacked = np.stack([np.asarray(x, dtype=np.float64) for x in logits])
    return (np.tensordot(w, stacked, axes=1) / w.sum()).astype(np.float32)


def softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    z = np.asarray(x, dtype=np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def soft_labels(merged_logits: np.ndarray, temperature: float = 2.0) -> np.ndarray:
    """PET's soft targets: softmax of the merged logits at temperature T (T=2 in PET)."""
    return softmax(merged_logits, temperature)
