"""Training settings chosen for the user: the documented rule behind ``auto_prompts.hyperparameters: rule``."""
from __future__ import annotations

import math

REFERENCE_PARAMS = 135e6  # SmolLM2-135M, the backbone the rule was measured on (configs/sst2.yaml, trec.yaml)


LORA_LEARNING_RATE = 1e-3


def suggest_train_settings(n_train: int, n_labels: int, n_params: float, batch_size: int = 8,
                           lora: bool = False) -> dict:
    """Pattern-model steps and learning rate from |T|, the number of labels and the backbone size.

    Rule:
      * steps = 10 passes over train at ``batch_size`` (10 * |T| / batch), at least 4 steps per
        label (every label seen in several batches) and at least 32, at most 64;
      * learning rate = 3e-5 * sqrt(135M / params), clipped to [1e-5, 5e-5]; with LoRA adapters
        (``pet.lora.enabled``) 1e-3, whatever the backbone.

    Where it comes from: on SST-2 16-shot (|T| = 32, 2 labels, SmolLM2-135M) 40 steps at 3e-5 gave
    the pattern models of 0.853-0.860 (README); TREC (|T| = 96, 6 labels) used 64. More steps than 64
    cost over 3 minutes per pattern model on a 2-core CPU and on 16 examples per label mostly
    overfit; larger backbones take a smaller step (PET used 1e-5 for the 355M RoBERTa-large).
    LoRA's 1e-3 was chosen on dev among 1e-4, 3e-4 and 1e-3 at the same 40 steps (SST-2 split 16-42,
    ``benchmarks/teacher_lora_bf16.py``; ensemble dev accuracy 0.781 / 0.781 / 0.813 on 32 texts).
    Not chosen on dev among several settings: every extra setting is another round of pattern-model
    training (about 2 minutes each here), which the 12-minute budget of a 16-shot run does not hold.
    """
    steps = max(math.ceil(10 * n_train / batch_size), 4 * n_labels, 32)
    lr = 3e-5 * math.sqrt(REFERENCE_PARAMS / max(n_params, 1.0))
    lr = LORA_LEARNING_RATE if lora else min(max(lr, 1e-5), 5e-5)
    return {"max_steps": int(min(steps, 64)), "learning_rate": float(lr), "batch_size": batch_size}


GOLD_IN_DISTILLATION_FROM = 3  # labels


def gold_in_distillation(n_labels: int) -> bool:
    """Whether the student also learns the labeled examples (one-hot gold targets) beside the soft labels:
    the default of ``distill.with_train``.

    Rule: from 3 labels on. With many labels the ensemble's soft labels are flat (TREC's 50 classes: mean top
    probability 0.165) and the student learns little from them alone. On dev (``benchmarks/distill_gold.py``,
    split seeds 13 / 42 / 100, a rule fixed before these rows ran) the gold examples raised the student by
    3.6 points on the mean of trec and sst-5 (trec 0.0 / -1.0 / +7.3, sst-5 +5.0 / +6.3 / +3.8), and doubled it
    on TREC-50 (0.164 -> 0.427). Binary tasks keep PET's recipe, soft labels only: there they did not help
    on dev (SST-2 0.0, subj -3.1, mr -9.4 points, split seed 13).
    """
    return n_labels >= GOLD_IN_DISTILLATION_FROM
