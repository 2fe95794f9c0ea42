"""Which kind of language model a folder holds, and how PET reads the next/masked token from it.

Two kinds of backbone carry a PET model:

* ``masked`` (BERT-style): the label word is read at a ``[MASK]`` placed anywhere in the pattern.
* ``causal`` (GPT/Llama/Gemma-style): the label word is the continuation of the pattern text, so
  ``{mask}`` ends the pattern and a word's score is the log-probability of its whole token sequence.

The kind comes from the folder's ``config.json`` alone (no weights are read), so configs can be
checked before any work starts.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
)

# transformers builds models under a process-wide meta-device context: two threads loading at
# once (parallel Prefect tasks) can see each other's meta tensors, so loads take turns.
_LOAD_LOCK = threading.Lock()

MASKED, CAUSAL = "masked", "causal"


class BackboneError(ValueError):
    """A model folder that cannot carry a PET model: says which folder and why."""


def _config(path: str | Path):
    if not Path(path).exists():
        raise FileNotFoundError(f"model path {str(path)!r} does not exist (models are loaded from local paths only)")
    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BackboneError(f"{path}: not a transformers model folder ({exc})") from exc


def backbone_kind(path: str | Path) -> str:
    """``masked`` or ``causal`` for a language-model folder; a clear error for anything else."""
    config = _config(path)
    archs = list(getattr(config, "architectures", None) or [])
    for arch in archs:
        kind = _kind_of_class(arch)
        if kind:
            return kind
    if archs and archs[0].endswith("Model"):  # e.g. BertModel: no language-model head to read words from
        raise BackboneError(
            f"{path}: its architecture {archs[0]} has no language-model head; PET needs a masked or causal LM "
            "(an encoder without a head can still be a distillation student: distill.model_path)"
        )
    if config.is_encoder_decoder:
        raise BackboneError(f"{path}: encoder-decoder models are not supported as PET backbones")
    # e.g. BertForPreTraining: the model type says which LM head transformers would load
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return MASKED
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return CAUSAL
    raise BackboneError(f"{path}: model type {config.model_type!r} is neither a masked nor a causal LM")


def student_problem(path: str | Path) -> str | None:
    """Why a folder cannot be the distillation student (a sequence classifier transformers builds on it), or None."""
    config = _config(path)
    if config.is_encoder_decoder:
        return f"model type {config.model_type!r} is an encoder-decoder; the student is an encoder (BERT-like)"
    if config.model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
        return f"transformers has no sequence classifier for model type {config.model_type!r}"
    return None


def _kind_of_class(name: str) -> str | None:
    if name in MODEL_FOR_MASKED_LM_MAPPING_NAMES.values():
        return MASKED
    if name in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        return CAUSAL
    return None


def model_kind(model) -> str:
    """``masked`` or ``causal`` for a loaded LM (by its class, e.g. LlamaForCausalLM)."""
    kind = _kind_of_class(type(model).__name__)
    if kind is None:
        raise BackboneError(f"{type(model).__name__} is neither a masked nor a causal language model")
    return kind


def load_tokenizer(path: str | Path):
    if not Path(path).exists():
        raise FileNotFoundError(f"model path {str(path)!r} does not exist (models are loaded from local paths only)")
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        # causal LMs often ship without a pad token; padded positions are masked out anyway
        tok.pad_token = tok.eos_token
    return tok


def load_language_model(path: str | Path, kind: str):
    """The LM in float32 (master weights for training; autocast handles bf16 on a GPU)."""
    return load_pretrained(AutoModelForMaskedLM if kind == MASKED else AutoModelForCausalLM, path, dtype=torch.float32)


def load_pretrained(cls, path: str | Path, **kwargs):
    """``cls.from_pretrained`` on a local folder, one load at a time in this process (``_LOAD_LOCK``)."""
    with _LOAD_LOCK:
        return cls.from_pretrained(str(path), local_files_only=True, **kwargs)


def output_head(model):
    """The module mapping hidden states to vocabulary logits, or None where only the full forward has it.

    BERT's ``cls`` and RoBERTa's ``lm_head`` include the transform before the decoder; a causal LM's
    head is its output embedding. Masked LMs with other layouts (DistilBERT, ALBERT, ...) return None:
    get_output_embeddings() there is only the final projection.
    """
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if head is not None:
            return head
    return model.get_output_embeddings() if model_kind(model) == CAUSAL else None


def vocab_logits_at(model, hidden: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits [..., V] of hidden states [..., H], computed in the model's dtype (float32 as
    trained, also under autocast; bf16 for a model cast to it) and returned as float32, soft-capped
    as the model does."""
    head = output_head(model)
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        logits = head(hidden.to(model.dtype)).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def autocast(device: torch.device):
    """bf16 autocast on a GPU; plain float32 on a CPU (bf16 matmuls are slow on most CPUs)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
