"""The one batched inference routine every classifier uses (PET models, the distilled student, its ONNX copy).

Rows run sorted by length, so a batch carries little padding; results go back to input order. On a
CUDA out-of-memory error the batch size halves and the same batch is redone, so one setting works on
any device. Gradients are off (``torch.inference_mode``), and a stop request ends it between batches.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .training import check_stop


def length_order(lengths: Sequence[int]) -> np.ndarray:
    """Row indices by increasing length; stable, so equal lengths keep input order."""
    return np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError)


@torch.inference_mode()
def run_batches(
    lengths: Sequence[int],
    run: Callable[[np.ndarray], torch.Tensor | np.ndarray],
    batch_size: int,
    width: int | None,
    progress: bool = False,
    desc: str = "predict",
) -> np.ndarray:
    """``run(indices)`` -> scores [len(indices), width] for batches of rows sorted by length; the scores of
    all rows [N, width] in input order (float32); ``width`` None: the width of the first batch's scores."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    order = length_order(lengths)
    out = None if width is None else np.empty((len(order), width), np.float32)
    with tqdm(total=len(order), desc=desc, disable=None if progress else True, leave=False) as bar:
        start = 0
        while start < len(order):
            check_stop()
            idx = order[start : start + batch_size]
            try:
                scores = run(idx)
            except Exception as exc:  # noqa: BLE001 (only out-of-memory is handled, the rest re-raised)
                if not _is_oom(exc) or batch_size == 1:
                    raise
                # the batch size that fits the device: halve it and redo this batch
                batch_size //= 2
                torch.cuda.empty_cache()
                continue
            if isinstance(scores, torch.Tensor):
                scores = scores.float().cpu().numpy()
            if out is None:
                out = np.empty((len(order), scores.shape[1]), np.float32)
            out[idx] = scores
            start += len(idx)
            bar.update(len(idx))
    return np.empty((0, width or 0), np.float32) if out is None else out


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def encode_texts(tokenizer, texts_a: Sequence[str], texts_b: Sequence[str] | None, max_length: int) -> dict:
    """A sequence classifier's inputs per row, truncated and unpadded: one batched call of the (fast)
    tokenizer for all rows; each batch is padded to its own longest row when it runs."""
    enc = tokenizer(list(texts_a), list(texts_b) if texts_b is not None else None, truncation=True, max_length=max_length)
    return {k: enc[k] for k in MODEL_INPUTS if k in enc}
