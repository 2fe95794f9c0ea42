"""Verbalizers: several words per label, words of several sub-tokens.

Each label maps to one or more words. With a masked LM a word's score at the mask position is the
mean (or the first, or the max: ``multi_token``) of its sub-tokens' logits, so multi-token words
take part in training and prediction like single-token ones. With a causal LM a word's score is
the exact log-probability of its token sequence continuing the pattern (``multi_token`` does not
apply; see ``pet.PETModel``). A label's score is the mean of its words' scores, as in PET.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

MULTI_TOKEN_MODES = ("mean", "first", "max")


class VerbalizerError(ValueError):
    pass


@dataclass
class Verbalizer:
    label_words: dict[str, list[str]]
    multi_token: str = "mean"
    labels: list[str] = field(init=False)

    def __post_init__(self):
        if not isinstance(self.label_words, dict) or not self.label_words:
            raise VerbalizerError("verbalizer needs a mapping label -> word(s)")
        norm: dict[str, list[str]] = {}
        for label, words in self.label_words.items():
            if isinstance(words, str):
                words = [words]
            words = [str(w) for w in (words or [])]
            if not words or any(not w.strip() for w in words):
                raise VerbalizerError(f"label {label!r} needs at least one non-empty word")
            norm[str(label)] = words
        self.label_words = norm
        self.labels = list(norm)
        if self.multi_token not in MULTI_TOKEN_MODES:
            raise VerbalizerError(f"multi_token must be one of {MULTI_TOKEN_MODES}, not {self.multi_token!r}")
        if len(self.labels) < 2:
            raise VerbalizerError("a classifier needs at least two labels")

    def to_dict(self) -> dict:
        return {"label_words": self.label_words, "multi_token": self.multi_token}


def word_token_ids(tokenizer, word: str, space_sensitive: bool) -> list[int]:
    """The exact token ids a label word has after a space in a pattern (training and search share this)."""
    text = (" " + word) if space_sensitive else word
    ids = tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise VerbalizerError(f"word {word!r} tokenizes to nothing")
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        raise VerbalizerError(f"word {word!r} contains tokens unknown to the tokenizer")
    return ids


class VerbalizerHead(torch.nn.Module):
    """Maps mask-position vocabulary logits [B, V] to label logits [B, L]."""

    def __init__(self, verbalizer: Verbalizer, tokenizer, space_sensitive: bool = False):
        super().__init__()
        self.verbalizer = verbalizer
        words = [[word_token_ids(tokenizer, w, space_sensitive) for w in verbalizer.label_words[lab]] for lab in verbalizer.labels]
        n_l = len(words)
        n_w = max(len(ws) for ws in words)
        n_t = max(len(t) for ws in words for t in ws)
        ids = torch.zeros(n_l, n_w, n_t, dtype=torch.long)
        tok_mask = torch.zeros(n_l, n_w, n_t)
        word_mask = torch.zeros(n_l, n_w)
        for i, ws in enumerate(words):
            for j, toks in enumerate(ws):
                word_mask[i, j] = 1
                for k, t in enumerate(toks):
                    ids[i, j, k] = t
                    tok_mask[i, j, k] = 1
        self.word_token_ids = words
        self.register_buffer("ids", ids, persistent=False)
        self.register_buffer("tok_mask", tok_mask, persistent=False)
        self.register_buffer("word_mask", word_mask, persistent=False)

    @property
    def is_multi_token(self) -> bool:
        return self.ids.shape[-1] > 1

    def aggregate(self, word_scores: torch.Tensor) -> torch.Tensor:
        """Word scores [B, L, W] -> label scores [B, L] (mean over each label's words)."""
        return (word_scores * self.word_mask).sum(-1) / self.word_mask.sum(-1)

    def forward(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """Masked LM: vocabulary logits at the mask [B, V] -> label logits [B, L]."""
        b = mask_logits.shape[0]
        flat = mask_logits.index_select(1, self.ids.reshape(-1)).reshape(b, *self.ids.shape)  # [B,L,W,T]
        mode = self.verbalizer.multi_token
        if mode == "first":
            word = flat[..., 0]
        elif mode == "max":
            word = flat.masked_fill(self.tok_mask == 0, float("-inf")).max(-1).values
            word = word.masked_fill(self.word_mask == 0, 0.0)
        else:
            word = (flat * self.tok_mask).sum(-1) / self.tok_mask.sum(-1).clamp(min=1)
        return self.aggregate(word)
