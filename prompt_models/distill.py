"""Distilling the ensemble's soft labels into a plain sequence classifier.

Loss: ``KL(softmax(t / T) || softmax(s / T)) * T^2`` (Hinton et al.), T = 2 by default.
"""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoModelForSequenceClassification

from .backbones import autocast, load_pretrained, load_tokenizer
from .examples import InputExample, gold_indices
from .inference import EncodedRows, encode_texts, run_batches
from .pair_tuning import tune_on_pairs
from .training import TrainConfig, batches_forever, classification_metrics, set_seed, train_steps

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
        # rows predict_texts cut at max_length, all calls together: `pet predict` reports them (one thread); the
        # served model's concurrent calls may lose a count, and nothing reads it there
        self.texts_cut = 0

    @classmethod
    def from_pretrained(cls, model_path: str, labels: Sequence[str], max_length: int = 128) -> "SequenceClassifier":
        tok = load_tokenizer(model_path)
        labels = [str(x) for x in labels]
        model = load_pretrained(
            AutoModelForSequenceClassification, model_path, dtype=torch.float32, num_labels=len(labels),
            id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)},
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
        model = load_pretrained(AutoModelForSequenceClassification, path, dtype=torch.float32)
        return cls(model, tok, meta["labels"], meta["max_length"])

    def in_bf16(self) -> "SequenceClassifier":
        """A copy with bf16 weights, for inference (the ``torch-bf16`` engine): its matrix products run in bf16
        (AMX / AVX512-BF16 kernels on a CPU that has them) with fp32 accumulation. Weights, not autocast:
        ``backbones.autocast`` is off on a CPU."""
        twin = SequenceClassifier(copy.deepcopy(self.model).to(torch.bfloat16).eval(), self.tokenizer, self.labels,
                                  self.max_length)
        twin.engine = "torch-bf16"
        return twin

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        (out / META_FILE).write_text(json.dumps({"labels": self.labels, "max_length": self.max_length}))
        return out

    def batch(self, examples: Sequence[InputExample]) -> dict:
        """The model's padded inputs for ``examples``, on its device."""
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

    def encode_texts(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> EncodedRows:
        """Token ids per row, unpadded (one batched call of the fast tokenizer); padded per batch later."""
        return encode_texts(self.tokenizer, texts_a, texts_b, self.max_length)

    def predict_texts(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None, batch_size: int = 64,
                      progress: bool = False) -> np.ndarray:
        """Logits [N, labels] in input order (rows run sorted by length, see ``inference.run_batches``)."""
        self.model.eval()
        enc = self.encode_texts(texts_a, texts_b)
        self.texts_cut += enc.cut
        dev = next(self.model.parameters()).device

        def run(idx):
            with autocast(dev):
                return self.model(**{k: torch.from_numpy(v).to(dev) for k, v in enc.batch(idx).items()}).logits

        return run_batches(enc.lengths, run, batch_size, len(self.labels), progress)

    def predict_logits(self, examples: Sequence[InputExample], batch_size: int = 64) -> np.ndarray:
        texts_b = [ex.text_b for ex in examples]
        return self.predict_texts([ex.text_a for ex in examples], texts_b if all(texts_b) else None, batch_size)

    def evaluate(self, examples: Sequence[InputExample], batch_size: int = 64) -> dict:
        gold = gold_indices(examples, self.labels)
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
        self.model.train()
        it = batches_forever(len(examples), cfg.batch_size, rng)
        dev = next(self.model.parameters()).device

        def step_loss() -> torch.Tensor:
            idx = next(it)
            with autocast(dev):
                logits = self.model(**self.batch([examples[i] for i in idx])).logits
            return distillation_loss(logits.float(), targets[idx].to(dev), cfg.temperature)

        fit = train_steps(self.model.parameters(), cfg, step_loss, "distill", log_fn, "distill_loss")
        self.model.eval()
        return fit


def with_gold_targets(examples: Sequence[InputExample], probs: np.ndarray, labeled: Sequence[InputExample],
                      labels: Sequence[str]) -> tuple[list[InputExample], np.ndarray]:
    """The soft-labeled texts followed by the labeled examples with one-hot targets of their gold label:
    examples [N + M], probs [N + M, L]."""
    gold = np.eye(len(labels), dtype=np.float32)[gold_indices(labeled, labels)]
    return [*examples, *labeled], np.concatenate([np.asarray(probs, dtype=np.float32), gold])


def distill_soft_labels(base: str | Path, labels: Sequence[str], max_length: int, examples: Sequence[InputExample],
                        probs: np.ndarray, cfg: TrainConfig, seed: int = 0, device: torch.device | None = None,
                        log_fn: Callable[[dict, int], None] | None = None,
                        pair_examples: Sequence[InputExample] | None = None) -> tuple[SequenceClassifier, dict]:
    """A sequence classifier on ``base`` trained on the ensemble's soft labels ``probs`` (made at
    ``cfg.temperature``); returns it and its fit record. With ``pair_examples`` (labeled), its encoder is
    first tuned on their SetFit pairs (``pair_tuning``)."""
    set_seed(seed)  # the new classification head is initialised here
    clf = SequenceClassifier.from_pretrained(str(base), labels, max_length)
    if device is not None:
        clf.model.to(device)
    pairs = tune_on_pairs(clf, pair_examples, gold_indices(pair_examples, labels), seed, log_fn) if pair_examples else None
    fit = clf.train_model(examples, probs, cfg, seed, log_fn)
    return clf, dict(fit, pairs=pairs) if pairs else fit
