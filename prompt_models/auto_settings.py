"""Training settings chosen for the user: the documented rule behind ``auto_prompts.hyperparameters: rule``."""
from __future__ import annotations

import math

REFERENCE_PARAMS = 135e6  # SmolLM2-135M, the backbone the rule was measured on (configs/sst2.yaml, trec.yaml)


def suggest_train_settings(n_train: int, n_labels: int, n_params: float, batch_size: int = 8) -> dict:
    """Pattern-model steps and learning rate from |T|, the number of labels and the backbone size.

    Rule:
      * steps = 10 passes over train at ``batch_size`` (10 * |T| / batch), at least 4 steps per
        label (every label seen in several batches) and at least 32, at most 64;
      * learning rate = 3e-5 * sqrt(135M / params), clipped to [1e-5, 5e-5].

    Where it comes from: on SST-2 16-shot (|T| = 32, 2 labels, SmolLM2-135M) 40 steps at 3e-5 gave
    the pattern models of 0.853-0.860 (README); TREC (|T| = 96, 6 labels) used 64. More steps than 64
    cost over 3 minutes per pattern model on a 2-core CPU and on 16 examples per label mostly
    overfit; larger backbones take a smaller step (PET used 1e-5 for the 355M RoBERTa-large).
    Not chosen on dev among several settings: every extra setting is another round of pattern-model
    training (about 2 minutes each here), which the 12-minute budget of a 16-shot run does not hold.
    """
    steps = max(math.ceil(10 * n_train / batch_size), 4 * n_labels, 32)
    lr = 3e-5 * math.sqrt(REFERENCE_PARAMS / max(n_params, 1.0))
    return {"max_steps": int(min(steps, 64)), "learning_rate": float(min(max(lr, 1e-5), 5e-5)), "batch_size": batch_size}
