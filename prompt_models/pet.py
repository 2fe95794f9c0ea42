"""The PET classifier: a masked LM read through a pattern and a verbalizer.

Training loss: cross-entropy over the label logits at the mask position, plus (optionally) the
auxiliary MLM loss on unlabeled text: ``(1 - alpha) * CE + alpha * MLM`` with alpha = 1e-4 (PET).
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm
from transformers import AutoModelForMaskedLM, AutoTokenizer

from .adapters import LoraSettings, add_lora, merged_copy
from .data import InputExample
from .patterns import Pattern, PatternEncoder, PatternError
from .soft_prompts import SoftPrompt, SoftPromptConfig
from .training import (
    MODEL_LOAD_LOCK,
    TrainConfig,
    batches_forever,
    classification_metrics,
    make_optimizer,
    mask_tokens,
    pad_batch,
    set_seed,
)
from .verbalizer import Verbalizer, VerbalizerHead

META_FILE = "pet_model.json"
SOFT_FILE = "soft_prompt.pt"


def load_tokenizer(path: str):
    path = str(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"model path {path!r} does not exist (models are loaded from local paths only)")
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


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
        self.soft_cfg = soft or SoftPromptConfig()
        if self.soft_cfg.enabled and pattern.num_soft_tokens == 0:
            pattern = Pattern("{soft:%d} " % self.soft_cfg.num_tokens + pattern.template)
        if not self.soft_cfg.enabled and pattern.num_soft_tokens:
            raise PatternError(f"template {pattern.template!r} has {{soft}} tokens but no soft prompt kind is set")
        self.pattern = pattern
        self.verbalizer = verbalizer
        self.max_length = max_length
        self.encoder = PatternEncoder(tokenizer, max_length)
        self.head = VerbalizerHead(verbalizer, tokenizer, self.encoder.space_sensitive)
        self.soft = SoftPrompt(self.soft_cfg, model, pattern.num_soft_tokens) if self.soft_cfg.enabled else None
        if self.soft_cfg.freeze_model:
            for name, p in self.model.named_parameters():
                if "lora_" not in name:  # LoRA adapters, when present, stay trainable
                    p.requires_grad_(False)
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
        with MODEL_LOAD_LOCK:
            model = AutoModelForMaskedLM.from_pretrained(str(model_path), local_files_only=True)
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
        if obj.soft is not None:
            obj.soft.load_state_dict(torch.load(path / SOFT_FILE, map_location="cpu"))
        return obj

    # ----------------------------------------------------------------- forward
    @property
    def labels(self) -> list[str]:
        return self.verbalizer.labels

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, examples: Sequence[InputExample]) -> list[dict]:
        out = []
        for ex in examples:
            demos = self.demonstrations(ex) if self.demonstrations else None
            out.append(self.encoder.encode(self.pattern, ex, demos))
        return out

    def collate(self, encoded: Sequence[dict]) -> dict:
        ids, att = pad_batch([e["input_ids"] for e in encoded], self.tokenizer.pad_token_id or 0)
        batch = {
            "input_ids": ids,
            "attention_mask": att,
            "mask_pos": torch.tensor([e["mask_pos"] for e in encoded], dtype=torch.long),
        }
        if self.soft is not None:
            batch["soft_pos"] = torch.tensor([e["soft_positions"] for e in encoded], dtype=torch.long)
        return batch

    def _mask_vocab_logits(self, batch: dict) -> torch.Tensor:
        dev = self.device
        ids = batch["input_ids"].to(dev)
        att = batch["attention_mask"].to(dev)
        kwargs = {"attention_mask": att}
        if self.soft is not None:
            emb = self.model.get_input_embeddings()(ids)
            kwargs["inputs_embeds"] = self.soft.apply(emb, batch["soft_pos"].to(dev))
        else:
            kwargs["input_ids"] = ids
        rows = torch.arange(ids.shape[0], device=dev)
        mask_pos = batch["mask_pos"].to(dev)
        try:
            head = getattr(self.model, "cls", None) or getattr(self.model, "lm_head", None)
            if head is not None:
                # run the LM head at the mask positions only: same numbers, far less work
                hidden = self.model.base_model(**kwargs)[0]
                return head(hidden[rows, mask_pos])
            return self.model(**kwargs).logits[rows, mask_pos]
        finally:
            if self.soft is not None:
                self.soft.disarm()

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self._mask_vocab_logits(batch))

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_logits(self, examples: Sequence[InputExample], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.eval()
        outs = []
        rng = range(0, len(examples), batch_size)
        for i in tqdm(rng, desc="predict", disable=not progress, leave=False):
            outs.append(self.forward(self.collate(self.encode(examples[i : i + batch_size]))).float().cpu())
        if not outs:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return torch.cat(outs).numpy()

    def gold(self, examples: Sequence[InputExample]) -> np.ndarray:
        return np.array([self.verbalizer.label_index(ex.label) for ex in examples])

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
        params = [p for p in self.parameters() if p.requires_grad]
        opt, sched = make_optimizer(params, cfg, cfg.max_steps)
        self.train()
        dev = self.device
        it = batches_forever(len(encoded), cfg.batch_size, rng)
        un_it = batches_forever(len(unlabeled), cfg.unlabeled_batch_size, rng) if use_mlm else None
        losses = []
        bar = tqdm(range(cfg.max_steps), desc="train", disable=not cfg.progress, leave=False)
        for step in bar:
            idx = next(it)
            logits = self.forward(self.collate([encoded[i] for i in idx]))
            loss = F.cross_entropy(logits, targets[idx].to(dev))
            if use_mlm:
                mlm = self._mlm_loss([unlabeled[i] for i in next(un_it)], cfg, gen)
                loss = (1 - cfg.mlm_alpha) * loss + cfg.mlm_alpha * mlm
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}")
                if log_fn:
                    log_fn({"train_loss": float(np.mean(losses[-10:]))}, step)
        self.eval()
        return {"final_loss": float(np.mean(losses[-10:])), "steps": cfg.max_steps}

    def _mlm_loss(self, examples: Sequence[InputExample], cfg: TrainConfig, gen) -> torch.Tensor:
        enc = self.tokenizer(
            [ex.text_a for ex in examples],
            [ex.text_b for ex in examples] if all(ex.text_b for ex in examples) else None,
            truncation=True,
            max_length=cfg.max_length,
            padding=True,
            return_tensors="pt",
        )
        inputs, labels = mask_tokens(enc["input_ids"], enc["attention_mask"], self.tokenizer, cfg.mlm_probability, gen)
        dev = self.device
        out = self.model(input_ids=inputs.to(dev), attention_mask=enc["attention_mask"].to(dev), labels=labels.to(dev))
        return out.loss
