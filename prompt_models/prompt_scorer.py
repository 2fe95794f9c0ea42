"""Zero-shot label scores of one backbone under many prompts, each (template, texts) computed once."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .examples import InputExample
from .lmbff import mask_log_probs
from .shared_prefix import can_share, shared_prefix_label_scores, shared_prefix_log_probs
from .verbalizer import VerbalizerError, word_token_ids


def _token_ids(model, words: dict) -> list[list[list[int]]]:
    return [[word_token_ids(model.tokenizer, w, model.head_space_sensitive) for w in ws] for ws in words.values()]


def _single_tokens(ids: list[list[list[int]]]) -> bool:
    return all(len(t) == 1 for per_label in ids for t in per_label)


class PromptScorer:
    """Zero-shot label scores of one backbone under many (template, label words) pairs.

    ``make_model(template, label_words)`` returns a ``PETModel`` sharing one loaded backbone
    (``label_words`` None: any verbalizer, e.g. ``any_words(tokenizer)``).
    Single-token words are read off one pass of vocabulary log-probabilities per template and split;
    multi-token words (causal LM) go through ``PETModel.predict_logits``.
    """

    def __init__(self, make_model, batch_size: int = 32):
        self.make_model = make_model
        self.batch_size = batch_size
        self._vocab: dict[tuple[str, str], torch.Tensor] = {}
        self._multi: dict[tuple[str, str, str], np.ndarray] = {}  # multi-token words' scores, each computed once

    def prefetch(self, templates: Sequence[str], name: str, examples: Sequence[InputExample], words) -> None:
        """Fill the vocabulary log-probabilities of ``templates`` on ``examples`` in one pass where they
        share a backbone (``shared_prefix``: each text runs once, not once per template); else they
        are computed one template at a time when first asked for. ``words`` as for ``make_model``;
        where some are of several tokens (never read off the vocabulary), the templates' label scores
        are computed so instead; unspellable words are left out."""
        models, multi = {}, {}
        for t in templates:
            if (t, name) in self._vocab or (words is not None and self._multi_key(t, name, words) in self._multi):
                continue  # scored already: no model is built
            try:
                model = self.make_model(t, words)
            except VerbalizerError:
                continue
            if words is None or _single_tokens(_token_ids(model, words)):
                models[t] = model
            else:
                multi[t] = model
        if can_share(list(models.values())):
            for t, logp in zip(models, shared_prefix_log_probs(list(models.values()), list(examples), self.batch_size)):
                self._vocab[(t, name)] = logp
        if can_share(list(multi.values())):
            for t, scores in zip(multi, shared_prefix_label_scores(list(multi.values()), list(examples), self.batch_size)):
                self._multi[self._multi_key(t, name, words)] = scores.numpy()

    @staticmethod
    def _multi_key(template: str, name: str, words: dict) -> tuple[str, str, str]:
        return template, name, repr(sorted(words.items()))

    def vocab_log_probs(self, template: str, name: str, examples: Sequence[InputExample], words) -> torch.Tensor:
        key = (template, name)
        if key not in self._vocab:
            self._vocab[key] = mask_log_probs(self.make_model(template, words), list(examples), self.batch_size)
        return self._vocab[key]

    def label_scores(self, template: str, words: dict, name: str, examples: Sequence[InputExample]) -> np.ndarray:
        model = self.make_model(template, words)
        ids = _token_ids(model, words)
        if _single_tokens(ids):
            logp = self.vocab_log_probs(template, name, examples, words)
            return np.stack([logp[:, [t[0] for t in per_label]].mean(-1).numpy() for per_label in ids], -1)
        key = self._multi_key(template, name, words)
        if key not in self._multi:
            self._multi[key] = model.predict_logits(list(examples), self.batch_size)
        return self._multi[key]
