"""The one batched inference routine every classifier uses (PET models, the distilled student, its ONNX copy).

Rows run sorted by length, so a batch carries little padding; results go back to input order. On a
CUDA out-of-memory error the batch size halves and the same batch is redone, so one setting works on
any device. Gradients are off (``torch.inference_mode``), and a stop request ends it between batches.
"""
from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class EncodedRows:
    """A sequence classifier's inputs per row, truncated and unpadded; ``batch`` pads some rows to the longest
    of them. Padding is done here in numpy because ``tokenizer.pad`` converts each batch through Python lists:
    that cost 4 s per 100,000 rows, a sixth of the time of the ONNX splade-tiny student's forward passes."""

    inputs: dict[str, list[list[int]]]  # MODEL_INPUTS the tokenizer gives -> one list of ids per row
    pad_values: dict[str, int]  # the value each input is padded with
    pad_left: bool  # the tokenizer's padding side
    cut: int = 0  # rows longer than max_length, cut to it (`pet predict` says how many)

    @property
    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.inputs["input_ids"]]

    def batch(self, idx: Sequence[int]) -> dict[str, np.ndarray]:
        """The rows ``idx`` padded to the longest of them: name -> int64 [len(idx), longest]."""
        rows = {k: [v[i] for i in idx] for k, v in self.inputs.items()}
        width = max((len(r) for r in rows["input_ids"]), default=0)
        out = {}
        for k, values in rows.items():
            arr = np.full((len(values), width), self.pad_values[k], np.int64)
            for j, r in enumerate(values):
                if self.pad_left:
                    arr[j, width - len(r) :] = r
                else:
                    arr[j, : len(r)] = r
            out[k] = arr
        return out


def encode_texts(tokenizer, texts_a: Sequence[str], texts_b: Sequence[str] | None, max_length: int) -> EncodedRows:
    """One batched call of the (fast) tokenizer for all rows, truncated to ``max_length``, unpadded."""
    texts_a, texts_b = list(texts_a), list(texts_b) if texts_b is not None else None
    if tokenizer.pad_token_id is None:  # as tokenizer.pad refuses: a row padded with a real token would be read
        raise ValueError("the tokenizer has no padding token: set tokenizer.pad_token (its eos token, for a causal LM)")
    pad_values = {"input_ids": tokenizer.pad_token_id, "attention_mask": 0,
                  "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0)}
    if _backend_call_is_plain(tokenizer):
        # what transformers' own call runs (its settings, then the Rust tokenizer) without the character offsets
        # and the Python conversion of every row it adds: a quarter to a third of the time on short texts
        from transformers.tokenization_utils_base import PaddingStrategy, TruncationStrategy

        backend = tokenizer.backend_tokenizer
        # both change the shared Rust tokenizer only where its setting differs, as transformers does: a change
        # while another thread encodes (a served model's concurrent requests) fails with "Already borrowed"
        tokenizer.set_truncation_and_padding(PaddingStrategy.DO_NOT_PAD, TruncationStrategy.LONGEST_FIRST,
                                             max_length, 0, None, None)
        if backend.encode_special_tokens != tokenizer.split_special_tokens:
            backend.encode_special_tokens = tokenizer.split_special_tokens
        rows = backend.encode_batch_fast(
            list(zip(texts_a, texts_b, strict=True)) if texts_b is not None else texts_a, add_special_tokens=True)
        inputs = {"input_ids": [r.ids for r in rows]}
        for key, attr in (("attention_mask", "attention_mask"), ("token_type_ids", "type_ids")):
            if key in tokenizer.model_input_names:  # the inputs transformers returns for this tokenizer
                inputs[key] = [getattr(r, attr) for r in rows]
    else:
        enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length)
        inputs = {k: enc[k] for k in MODEL_INPUTS if k in enc}
        rows = enc.encodings  # None from a Python tokenizer
    cut = count_cut(tokenizer, texts_a, texts_b, inputs["input_ids"], rows, max_length)
    return EncodedRows(inputs, pad_values, tokenizer.padding_side == "left", cut)


def count_cut(tokenizer, texts_a, texts_b, ids: list[list[int]], encodings, max_length: int) -> int:
    """How many rows the truncation cut. Only a row of ``max_length`` tokens may have been cut (one exactly that
    long was not): the Rust tokenizer's ``encodings`` keep what each row lost, so nothing is tokenized again."""
    full = [i for i, row in enumerate(ids) if len(row) >= max_length]
    if encodings is not None:
        return sum(1 for i in full if encodings[i].overflowing)
    # a Python tokenizer keeps nothing of it: those rows (few) are tokenized again, uncut
    uncut = (tokenizer(texts_a[i], None if texts_b is None else texts_b[i], truncation=True,
                       max_length=max_length + 1)["input_ids"] for i in full)
    return sum(1 for ids in uncut if len(ids) > max_length)


def _backend_call_is_plain(tokenizer) -> bool:
    """A fast tokenizer whose call is transformers' generic one (no model-specific override of the call, the
    encoding or the input mode, as mBART's and NLLB's have)."""
    try:
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:
        return False
    cls = type(tokenizer)
    return (isinstance(tokenizer, TokenizersBackend) and not hasattr(tokenizer, "_switch_to_input_mode")
            and all(getattr(cls, name) is getattr(TokenizersBackend, name) for name in ("__call__", "_encode_plus")))
