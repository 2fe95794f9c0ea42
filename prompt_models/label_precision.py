"""Soft-labeling in bf16 on a CPU, kept only where it leaves the labels as fp32 gives them
(``pet.label_precision``).

bf16 weights label 2.1x faster than fp32 on the Intel AMX CPU (benchmarks/RESULTS.md), but a pattern model
fine-tuned in full moves its weights by less than bf16's rounding step: cast to bf16, most of the training is
rounded away (SST-2 ensemble 0.857 -> 0.812; argmax agreement with fp32 0.89-0.95). LoRA at its rule's
learning rate moves them far enough (agreement 0.99-1.00, test 0.860 fp32 / 0.862 bf16). So the choice is
checked per model on the texts it is about to label: both precisions score a sample, and bf16 is kept only if
at most ``1 - MIN_AGREEMENT`` of the sample changes its argmax. Neither torch nor transformers checks this.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

SAMPLE_TEXTS = 128  # the check labels this many texts in both precisions
MIN_AGREEMENT = 0.99  # of 128 texts, at most one may change its label
# ``auto`` checks only where labeling this many texts or more: the check's fp32 pass costs about what bf16
# saves on 2 x SAMPLE_TEXTS texts
MIN_ROWS_FOR_BF16 = 512


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "fp32" or "bf16" (weights) on a CPU, "bf16-autocast" on a GPU: what labels the texts
    reason: str
    agreement: float | None = None  # argmax agreement of bf16 with fp32 on the sample, where it was checked

    def line(self) -> str:
        checked = "" if self.agreement is None else f" (bf16 agrees with fp32 on {self.agreement:.1%} of the sample)"
        return f"labels in {self.precision}: {self.reason}{checked}"


def worth_checking(requested: str, pet, rows: int, bf16_cpu: bool) -> str | None:
    """Why bf16 is not tried for this model (None: try it). ``requested``: ``pet.label_precision``."""
    if requested == "fp32":
        return "pet.label_precision is fp32"
    if requested == "bf16":
        return None
    if not bf16_cpu:
        return "this CPU has no bf16 matrix kernels"
    if not getattr(pet, "lora_trained", False):
        return "a fully fine-tuned pattern model loses its training in bf16 (benchmarks/RESULTS.md)"
    if rows < MIN_ROWS_FOR_BF16:
        return f"{rows} texts to label, fewer than the {MIN_ROWS_FOR_BF16} where the check pays"
    return None


def choose(pet, sample: Sequence, batch_size: int, requested: str = "auto", rows: int = 0,
           bf16_cpu: bool = False):
    """``(model, choice, sample_logits)``: ``pet`` itself, or a bf16 copy of it where that keeps its labels on
    ``sample`` (the first texts to label: at most SAMPLE_TEXTS are scored in both precisions). ``sample_logits``:
    the chosen model's logits of those texts, so the caller labels them once (None where nothing was checked)."""
    import torch

    if pet.device.type != "cpu":  # pet.label_precision is about CPUs
        return pet, PrecisionChoice("bf16-autocast", "on a GPU the model runs under bf16 autocast"), None
    skip = worth_checking(requested, pet, rows, bf16_cpu)
    if skip:
        return pet, PrecisionChoice("fp32", skip), None
    sample = list(sample)[:SAMPLE_TEXTS]
    fp32 = pet.predict_logits(sample, batch_size)
    twin = copy.deepcopy(pet)
    twin.model.to(torch.bfloat16)  # weights, not autocast: ``backbones.autocast`` is off on a CPU
    try:
        bf16 = twin.predict_logits(sample, batch_size)
    except RuntimeError as exc:  # a layer without a bf16 CPU kernel
        return pet, PrecisionChoice("fp32", f"bf16 failed to run ({exc})"), fp32
    agreement = float((bf16.argmax(-1) == fp32.argmax(-1)).mean())
    if agreement < MIN_AGREEMENT:
        return pet, PrecisionChoice("fp32", f"bf16 changes more than {1 - MIN_AGREEMENT:.0%} of the labels", agreement), fp32
    return twin, PrecisionChoice("bf16", "bf16 keeps the labels", agreement), bf16
