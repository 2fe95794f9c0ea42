"""Distilling the ensemble's soft labels into a plain sequence classifier.

Loss: ``KL(softmax(t / T) || softmax(s / T)) * T^2`` (Hinton et al.), T = 2 by default.
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
from transformers import AutoModelForSequenceClassification

from .examples import InputExample
from .inference import encode_texts, run_batches
from .backbones import autocast, load_tokenizer
from .training import MODEL_LOAD_LOCK, TrainConfig, batches_forever, check_stop, classification_metrics, make_optimizer, set_seed

META_FILE = "classifier.json"


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student at T) * T^2, averaged over the batch; teacher_probs are already at T."""
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    return F.kl_div(log_p, teacher_probs, reduction="batchmean") * temperature**2


class SequenceClassifier:
    engine = "torch"  # as OnnxClassifier.engine: what `pet predict` reports

    def __init__(self, model, tokenizer, labels: list[str], max_length: int = 128):
        self.model = model
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, model_path: str, labels: Sequence[str], max_length: int = 128) -> "SequenceClassifier":
        tok = load_tokenizer(model_path)
        labels = [str(x) for x in labels]
        with MODEL_LOAD_LOCK:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(model_path),
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={lab: i for i, lab in enumerate(labels)},
                local_files_only=True,
                dtype=torch.float32,
            )
        if model.config.pad_token_id is None:
            # decoder classifiers (LlamaForSequenceClassification) find each row's last token by it
            model.config.pad_token_id = tok.pad_token_id
        return cls(model, tok, labels, max_length)

    @classmethod
    def load(cls, path: str | Path) -> "SequenceClassifier":
        path = Path(path)
        meta = json.loads((path / META_FILE).read_text())
        tok = load_tokenizer(str(path))
        with MODEL_LOAD_LOCK:
            model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
        return cls(model, tok, meta["labels"], meta["max_length"])

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        (out / META_FILE).write_text(json.dumps({"labels": self.labels, "max_length": self.max_length}))
        return out

    def _batch(self, examples: Sequence[InputExample]):
        texts_b = [ex.text_b for ex in examples]
        enc = self.tokenizer(
            [ex.text_a for ex in examples],
            texts_b if all(texts_b) else None,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        dev = next(self.model.parameters()).device
        return {k: v.to(dev) for k, v in enc.items()}

    def encode_texts(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> dict:
        """Token ids per row, unpadded (one batched call of the fast tokenizer); padded per batch later."""
        return encode_texts(self.tokenizer, texts_a, texts_b, self.max_length)

    def predict_texts(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None, batch_size: int = 64,
                      progress: bool = False) -> np.ndarray:
        """Logits [N, labels] in input order (rows run sorted by length, see ``inference.run_batches``)."""
        self.model.eval()
        enc = self.encode_texts(texts_a, texts_b)
        dev = next(self.model.parameters()).device

        def run(idx):
            batch = self.tokenizer.pad({k: [enc[k][i] for i in idx] for k in enc}, return_tensors="pt")
            with autocast(dev):
                return self.model(**{k: v.to(dev) for k, v in batch.items()}).logits

        return run_batches([len(ids) for ids in enc["input_ids"]], run, batch_size, len(self.labels), progress)

    def predict_logits(self, examples: Sequence[InputExample], batch_size: int = 64) -> np.ndarray:
        texts_b = [ex.text_b for ex in examples]
        return self.predict_texts([ex.text_a for ex in examples], texts_b if all(texts_b) else None, batch_size)

    def evaluate(self, examples: Sequence[InputExample], batch_size: int = 64) -> dict:
        gold = np.array([self.labels.index(ex.label) for ex in examples])
        return classification_metrics(self.predict_logits(examples, batch_size), gold, len(self.labels))

    def train_model(
        self,
        examples: Sequence[InputExample],
        targets: np.ndarray,
        cfg: TrainConfig,
        seed: int = 0,
        log_fn: Callable[[dict, int], None] | None = None,
    ) -> dict:
        """Train on probability targets [N, L] with the temperature-scaled KL loss."""
        targets = torch.as_tensor(np.asarray(targets), dtype=torch.float)
        if targets.shape != (len(examples), len(self.labels)):
            raise ValueError(f"targets shape {tuple(targets.shape)} != ({len(examples)}, {len(self.labels)})")
        if len(examples) == 0:
            raise ValueError("no examples to distill on")
        set_seed(seed)
        rng = random.Random(seed)
        opt, sched = make_optimizer(self.model.parameters(), cfg, cfg.max_steps)
        self.model.train()
        it = batches_forever(len(examples), cfg.batch_size, rng)
        losses = []
        dev = next(self.model.parameters()).device
        for step in tqdm(range(cfg.max_steps), desc="distill", disable=None if cfg.progress else True, leave=False):
            check_stop()
            idx = next(it)
            with autocast(dev):
                logits = self.model(**self._batch([examples[i] for i in idx])).logits
            loss = distillation_loss(logits.float(), targets[idx].to(dev), cfg.temperature)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if log_fn and step % 10 == 0:
                log_fn({"distill_loss": float(np.mean(losses[-10:]))}, step)
        self.model.eval()
        return {"final_loss": float(np.mean(losses[-10:])), "steps": cfg.max_steps}
