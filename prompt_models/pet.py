"""The PET classifier: a masked or causal LM read through a pattern and a verbalizer.

Masked LM: label scores are the verbalizer's reading of the vocabulary logits at the mask.
Causal LM: the pattern ends where the label word starts; a word's score is the log-probability of
its whole token sequence as the continuation (``causal_words``).

Training loss: cross-entropy over the label scores, plus (optionally) the auxiliary LM loss on
unlabeled text: ``(1 - alpha) * CE + alpha * LM`` with alpha = 1e-4 (PET). The LM loss is masked
language modelling on the raw text for a masked LM, next-token prediction on the pattern-wrapped
text for a causal LM.
"""
from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from transformers import DynamicCache

from .adapters import LoraSettings, add_lora, merged_copy
from .backbones import (
    CAUSAL,
    autocast,
    backbone_kind,
    load_language_model,
    load_tokenizer,
    model_kind,
    output_head,
    vocab_logits_at,
)
from .causal_words import causal_label_scores
from .examples import InputExample, gold_indices
from .inference import run_batches
from .patterns import Pattern, PatternEncoder, PatternError
from .soft_prompts import SoftPrompt, SoftPromptConfig
from .training import (
    TrainConfig,
    batches_forever,
    classification_metrics,
    mlm_collator,
    set_seed,
    train_steps,
)
from .verbalizer import Verbalizer, VerbalizerHead

META_FILE = "pet_model.json"
SOFT_FILE = "soft_prompt.pt"


class PETModel(torch.nn.Module):
    def __init__(
        self,
        model,
        tokenizer,
        pattern: Pattern,
        verbalizer: Verbalizer,
        max_length: int = 128,
        soft: SoftPromptConfig | None = None,
        lora: LoraSettings | None = None,
    ):
        super().__init__()
        self.lora_cfg = lora or LoraSettings()
        # with LoRA the adapters live inside ``model`` itself; the PEFT wrapper is kept for saving
        self._peft = [add_lora(model, self.lora_cfg)] if self.lora_cfg.enabled else []
        self.model = model
        self.tokenizer = tokenizer
        self.kind = model_kind(model)
        self.soft_cfg = soft or SoftPromptConfig()
        if self.soft_cfg.enabled and pattern.num_soft_tokens == 0:
            # no space after the soft tokens: a space-sensitive tokenizer would make it a token of its own
            pattern = Pattern("{soft:%d}" % self.soft_cfg.num_tokens + pattern.template)
        if not self.soft_cfg.enabled and pattern.num_soft_tokens:
            raise PatternError(f"template {pattern.template!r} has {{soft}} tokens but no soft prompt kind is set")
        self.pattern = pattern
        self.verbalizer = verbalizer
        self.max_length = max_length
        self.encoder = PatternEncoder(tokenizer, max_length, causal=self.causal)
        self.head = VerbalizerHead(verbalizer, tokenizer, self.encoder.space_sensitive)
        self.soft = SoftPrompt(self.soft_cfg, model, pattern.num_soft_tokens) if self.soft_cfg.enabled else None
        if self.soft_cfg.freeze_model:
            for name, p in self.model.named_parameters():
                if "lora_" not in name:  # LoRA adapters, when present, stay trainable
                    p.requires_grad_(False)
        self.lora_trained = self.lora_cfg.enabled
        # optional callable: example -> [(demo_example, label_word), ...] (see demonstrations.py)
        self.demonstrations: Callable[[InputExample], list] | None = None

    # ----------------------------------------------------------------- construction / persistence
    @classmethod
    def from_pretrained(
        cls,
        model_path: str,
        pattern: Pattern | str,
        verbalizer: Verbalizer | dict,
        max_length: int = 128,
        soft: SoftPromptConfig | None = None,
        lora: LoraSettings | None = None,
    ) -> "PETModel":
        tok = load_tokenizer(model_path)
        model = load_language_model(model_path, backbone_kind(model_path))
        if isinstance(pattern, str):
            pattern = Pattern(pattern)
        if isinstance(verbalizer, dict):
            verbalizer = Verbalizer(verbalizer)
        return cls(model, tok, pattern, verbalizer, max_length, soft, lora)

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        weights = merged_copy(self._peft[0]) if self._peft else self.model
        weights.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        meta = {
            "template": self.pattern.template,
            "verbalizer": self.verbalizer.to_dict(),
            "max_length": self.max_length,
            "soft_prompt": self.soft_cfg.to_dict(),
            "lora_merged": self.lora_cfg.to_dict() if self.lora_cfg.enabled else None,
        }
        if self.soft is not None:
            torch.save(self.soft.state_dict(), out / SOFT_FILE)
        (out / META_FILE).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, path: str | Path) -> "PETModel":
        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.exists():
            raise FileNotFoundError(f"{path} is not a saved PET model (no {META_FILE})")
        meta = json.loads(meta_path.read_text())
        soft = SoftPromptConfig(**meta.get("soft_prompt", {}))
        verb = Verbalizer(**meta["verbalizer"])
        obj = cls.from_pretrained(str(path), Pattern(meta["template"]), verb, meta["max_length"], soft)
        obj.lora_trained = bool(meta.get("lora_merged"))  # its update survives bf16 (label_precision.py)
        if obj.soft is not None:
            obj.soft.load_state_dict(torch.load(path / SOFT_FILE, map_location="cpu"))
        return obj

    # ----------------------------------------------------------------- forward
    @property
    def labels(self) -> list[str]:
        return self.verbalizer.labels

    @property
    def causal(self) -> bool:
        return self.kind == CAUSAL

    @property
    def head_space_sensitive(self) -> bool:
        """Whether label words are encoded with a leading space (byte-level BPE / SentencePiece)."""
        return self.encoder.space_sensitive

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, examples: Sequence[InputExample]) -> list[dict]:
        return self.encoder.encode_all(self.pattern, examples, self.demonstrations)

    def collate(self, encoded: Sequence[dict]) -> dict:
        # right-padded whatever the tokenizer's side: mask_pos counts from the start of each row
        padded = self.tokenizer.pad({"input_ids": [e["input_ids"] for e in encoded]}, padding_side="right",
                                    return_tensors="pt")
        batch = {
            "input_ids": padded["input_ids"],
            "attention_mask": padded["attention_mask"],
            "mask_pos": torch.tensor([e["mask_pos"] for e in encoded], dtype=torch.long),
        }
        if self.soft is not None:
            batch["soft_pos"] = torch.tensor([e["soft_positions"] for e in encoded], dtype=torch.long)
        return batch

    @contextlib.contextmanager
    def _model_inputs(self, batch: dict):
        """Keyword inputs of the LM for ``batch`` (soft-prompt vectors written in, prefix hooks armed)."""
        dev = self.device
        ids = batch["input_ids"].to(dev)
        kwargs = {"attention_mask": batch["attention_mask"].to(dev)}
        if self.causal:
            kwargs["use_cache"] = False
        if self.soft is not None:
            kwargs["inputs_embeds"] = self.soft.write(self.model.get_input_embeddings()(ids), batch["soft_pos"].to(dev))
        else:
            kwargs["input_ids"] = ids
        try:
            yield kwargs
        finally:
            if self.soft is not None:
                self.soft.disarm()

    def hidden_states(self, batch: dict, cache: DynamicCache | None = None) -> torch.Tensor:
        """Last hidden states [B, T, H]; with ``cache``, the keys and values are kept in it."""
        with self._model_inputs(batch) as kwargs:
            if cache is not None:
                kwargs.update(use_cache=True, past_key_values=cache)
            return self.model.base_model(**kwargs)[0]

    def mask_vocab_logits(self, batch: dict) -> torch.Tensor:
        """Vocabulary logits [B, V] at the prediction position (the mask, or the last pattern token)."""
        if output_head(self.model) is None:  # a masked LM whose head only the full forward applies
            return self._full_forward_logits(batch)
        return self.vocab_logits_at_mask(self.hidden_states(batch), batch)

    def vocab_logits_at_mask(self, hidden: torch.Tensor, batch: dict) -> torch.Tensor:
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        # the LM head runs at one position per row: same numbers, far less work (Gemma: 262k vocab)
        return vocab_logits_at(self.model, hidden[rows, batch["mask_pos"].to(hidden.device)])

    def _full_forward_logits(self, batch: dict) -> torch.Tensor:
        with self._model_inputs(batch) as kwargs:
            logits = self.model(**kwargs).logits
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, batch["mask_pos"].to(logits.device)].float()

    def forward(self, batch: dict) -> torch.Tensor:
        if self.causal:
            with autocast(self.device):  # bf16 on a GPU; the vocabulary logits stay float32
                return causal_label_scores(self, batch)
        return self.head(self.mask_vocab_logits(batch))

    # ----------------------------------------------------------------- inference
    def predict_logits(self, examples: Sequence[InputExample], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.eval()
        encoded = self.encode(examples)
        return run_batches(
            [len(e["input_ids"]) for e in encoded],
            lambda idx: self.forward(self.collate([encoded[j] for j in idx])),
            batch_size,
            len(self.labels),
            progress,
        )

    def gold(self, examples: Sequence[InputExample]) -> np.ndarray:
        return gold_indices(examples, self.verbalizer.labels)

    def evaluate(self, examples: Sequence[InputExample], batch_size: int = 64) -> dict:
        logits = self.predict_logits(examples, batch_size)
        return classification_metrics(logits, self.gold(examples), len(self.labels))

    # ----------------------------------------------------------------- training
    def train_model(
        self,
        train: Sequence[InputExample],
        cfg: TrainConfig,
        seed: int = 0,
        unlabeled: Sequence[InputExample] | None = None,
        log_fn: Callable[[dict, int], None] | None = None,
    ) -> dict:
        """Fine-tune on ``train`` (cross-entropy over label logits [+ alpha * auxiliary MLM loss])."""
        if not train:
            raise ValueError("no training examples")
        set_seed(seed)
        rng = random.Random(seed)
        gen = torch.Generator().manual_seed(seed)
        encoded = self.encode(train)
        targets = torch.tensor(self.gold(train))
        use_mlm = bool(unlabeled) and cfg.mlm_alpha > 0
        self.train()
        dev = self.device
        it = batches_forever(len(encoded), cfg.batch_size, rng)
        un_it = batches_forever(len(unlabeled), cfg.unlabeled_batch_size, rng) if use_mlm else None

        def step_loss() -> torch.Tensor:
            idx = next(it)
            loss = F.cross_entropy(self.forward(self.collate([encoded[i] for i in idx])), targets[idx].to(dev))
            if use_mlm:
                mlm = self.auxiliary_lm_loss([unlabeled[i] for i in next(un_it)], cfg, gen)
                loss = (1 - cfg.mlm_alpha) * loss + cfg.mlm_alpha * mlm
            return loss

        fit = train_steps(self.parameters(), cfg, step_loss, "train", log_fn)
        self.eval()
        return fit

    def auxiliary_lm_loss(self, examples: Sequence[InputExample], cfg: TrainConfig, gen) -> torch.Tensor:
        if self.causal:
            return self._causal_lm_loss(examples)
        batch = self.masked_lm_batch(examples, cfg, gen)
        dev = self.device
        kwargs = dict(input_ids=batch["input_ids"].to(dev), attention_mask=batch["attention_mask"].to(dev))
        labels = batch["labels"].to(dev)
        picked = labels != -100
        if not picked.any():  # a short batch may draw no position at all
            return torch.zeros((), device=dev)
        if output_head(self.model) is None:  # a masked LM whose head only the full forward applies
            return self.model(**kwargs, labels=labels).loss
        # the LM head at the masked positions only (15% of them): the same loss, without the
        # [batch, length, vocab] logits, their log-softmax and gradient (about 0.4 GB for a BERT
        # vocabulary at batch 8 x 128 tokens, which made training peak far above inference)
        hidden = self.model.base_model(**kwargs)[0]  # [B, T, H]
        logits = vocab_logits_at(self.model, hidden[picked])  # [n_masked, V]
        return F.cross_entropy(logits, labels[picked])

    def masked_lm_batch(self, examples: Sequence[InputExample], cfg: TrainConfig, gen: torch.Generator) -> dict:
        """The unlabeled texts tokenized, padded and masked by transformers' MLM collator:
        input_ids, attention_mask, labels (-100 where nothing is predicted)."""
        enc = self.tokenizer(
            [ex.text_a for ex in examples],
            [ex.text_b for ex in examples] if all(ex.text_b for ex in examples) else None,
            truncation=True,
            max_length=cfg.max_length,
            return_special_tokens_mask=True,
        )
        rows = [dict(zip(enc.keys(), values)) for values in zip(*enc.values())]
        return mlm_collator(self.tokenizer, cfg.mlm_probability, gen)(rows)

    def _causal_lm_loss(self, examples: Sequence[InputExample]) -> torch.Tensor:
        """Next-token loss on the pattern-wrapped unlabeled texts (soft and padded positions excluded)."""
        batch = self.collate([self.encoder.encode(self.pattern, ex) for ex in examples])
        with autocast(self.device):
            hidden = self.hidden_states(batch)
            logits = vocab_logits_at(self.model, hidden[:, :-1]).float()
        targets = batch["input_ids"][:, 1:].clone()
        targets[batch["attention_mask"][:, 1:] == 0] = -100
        if "soft_pos" in batch:
            soft = torch.zeros_like(batch["input_ids"], dtype=torch.bool).scatter_(1, batch["soft_pos"], True)
            targets[soft[:, 1:]] = -100
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).to(logits.device))
