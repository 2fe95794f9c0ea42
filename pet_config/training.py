"""One training config per stage, each with only the fields that stage reads.

The core trains with ``prompt_models.training.TrainConfig``; ``core()`` builds it from a stage's
settings, the fields the stage does not read left at the core's defaults. Cache keys are taken
from that core config (``tasks.caching.train_cfg_key``), so a field a stage cannot set never
changes a key, and keys of configs written before this split stay the same.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prompt_models.training import TrainConfig


class StrictModel(BaseModel):
    """A config section: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class _FineTuning(StrictModel):
    """The optimizer settings every stage's fine-tuning reads (AdamW, linear schedule)."""

    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate")
    max_steps: int = Field(200, ge=1, description="optimizer steps")
    batch_size: int = Field(8, ge=1, description="labeled examples per step")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="share of the steps with a linear learning-rate warmup")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient norm clipping")
    progress: bool = Field(True, description="progress bars (on a terminal only); changes no result")

    def core(self, **extra) -> TrainConfig:
        return TrainConfig(**self.model_dump(), **extra)


class PatternTrainConfig(_FineTuning):
    """``pet.train``: each pattern model (PET's loss plus the auxiliary language-model loss)."""

    # left unset, these two are set on every run by prompt_models.auto_settings (auto_prompts.hyperparameters: rule)
    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate; unset, `pet run` sets it by the rule (3e-5 * sqrt(135M / backbone parameters), clipped to [1e-5, 5e-5]; 1e-3 with pet.lora.enabled) unless `auto_prompts.hyperparameters: config`")
    max_steps: int = Field(200, ge=1, description="optimizer steps; unset, `pet run` sets it by the rule (10 passes over train, at least 32 and 4 per label, at most 64) unless `auto_prompts.hyperparameters: config`")
    eval_batch_size: int = Field(64, ge=1, description="inference batch (evaluation, soft-labeling, predict); a CUDA out-of-memory error halves it")
    mlm_alpha: float = Field(1e-4, ge=0, le=1, description="weight of the auxiliary LM loss on unlabeled text: (1 - alpha) * CE + alpha * LM")
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="share of tokens masked for the auxiliary loss (masked LM)")
    unlabeled_batch_size: int = Field(8, ge=1, description="unlabeled texts per step for the auxiliary loss")
    max_length: int = Field(128, ge=8, description="token limit of the unlabeled texts in the auxiliary loss (masked LM)")


class DistillTrainConfig(_FineTuning):
    """``distill.train``: the student classifier on the soft labels (at ``pet.temperature``)."""

    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate")
    max_steps: int = Field(300, ge=1, description="optimizer steps")
    batch_size: int = Field(16, ge=1, description="soft-labeled texts per step")


class SearchTrainConfig(_FineTuning):
    """``template_search.train`` / ``label_word_search.train``: the brief fine-tuning that ranks a
    candidate prompt on dev (no unlabeled data)."""

    max_steps: int = Field(30, ge=1, description="optimizer steps per candidate")
    eval_batch_size: int = Field(64, ge=1, description="inference batch when scoring a candidate")
