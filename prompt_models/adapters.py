"""LoRA adapters through PEFT for the PET masked or causal LM (``pet.lora.enabled: true``).

The adapters are injected in place, so the PET model keeps calling the same module; only the
LoRA matrices (and, with a soft prompt, the prompt) are trained. On save the adapters are merged
into a copy of the weights, so a saved model loads and predicts like any other PET model.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field


class AdapterError(ValueError):
    pass


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list = field(default_factory=lambda: ["all-linear"])  # empty: PEFT's default for the architecture

    def __post_init__(self):
        if self.r < 1:
            raise AdapterError("lora.r must be at least 1")

    def to_dict(self) -> dict:
        return asdict(self)


def add_lora(model, settings: LoraSettings):
    """Inject LoRA layers into ``model`` (in place); returns the PEFT wrapper."""
    from peft import LoraConfig, TaskType, get_peft_model

    from .backbones import CAUSAL, model_kind

    cfg = LoraConfig(
        task_type=TaskType.CAUSAL_LM if model_kind(model) == CAUSAL else None,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        # PEFT takes "all-linear" as a string of its own, not as a module name in a list
        target_modules="all-linear" if list(settings.target_modules) == ["all-linear"] else list(settings.target_modules) or None,
    )
    try:
        return get_peft_model(model, cfg)
    except ValueError as exc:
        raise AdapterError(f"cannot add LoRA to {type(model).__name__}: {exc}; set lora.target_modules") from exc


def merged_copy(peft_model):
    """A plain transformers model with the adapters merged in; the live model keeps its adapters."""
    return copy.deepcopy(peft_model).merge_and_unload()
