"""Label scores of a causal LM: log p(word | pattern) for label words of one token or several.

The pattern ends where the label word starts, so a word's first token is read at the pattern's last
position. A multi-token word's later tokens t_2..t_k are predicted from t_1..t_{k-1} written after
it: they run as a short tail on the pattern's key/value cache (transformers' ``DynamicCache``), cut
back after each word, so 77 intent names like "card arrival" cost 77 tails of a few tokens, not 77
passes over the text. Where the cache cannot be cut back (recurrent layers, a full sliding window)
or soft prompts write their vectors in per pass, the first such word rides along in the pass that
reads the pattern (attention is causal, so the pattern's scores do not see it) and each further one
costs a pass of its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

from .backbones import vocab_logits_at

if TYPE_CHECKING:
    from .pet import PETModel


def croppable_cache(lm, width: int) -> DynamicCache | None:
    """A key/value cache for ``lm`` that tails can be cut back from, or None: a recurrent or linear-attention
    layer (Mamba, Qwen3.5, LFM2) keeps no past to cut back to and has read each row's padding, and a
    sliding-window layer cannot be cut back once ``width`` tokens fill its window."""
    cache = DynamicCache(config=lm.config)
    window = getattr(lm.config.get_text_config(decoder=True), "sliding_window", None) or 0
    kinds = {type(layer).__name__ for layer in cache.layers}
    ok = kinds == {"DynamicLayer"} or (kinds <= {"DynamicLayer", "DynamicSlidingWindowLayer"} and width < window)
    return cache if ok else None


def causal_label_scores(pet: PETModel, batch: dict) -> torch.Tensor:
    """Label scores [B, L]: mean over each label's words of log p(word | pattern)."""
    head = pet.head
    multi = [toks for words in head.word_token_ids for toks in words if len(toks) > 1]
    cache = croppable_cache(pet.model, batch["input_ids"].shape[1] + longest_word(pet)) \
        if multi and pet.soft is None else None
    rider = multi[0] if multi and cache is None else None
    ext, rider_pos = with_word(pet, batch, rider) if rider else (batch, None)
    hidden = pet.hidden_states(ext, cache)
    logp = torch.log_softmax(pet.vocab_logits_at_mask(hidden, batch).float(), -1)  # [B, V]

    def rest_of(toks: list[int]) -> torch.Tensor:
        if cache is not None:
            return continuation_cached(pet, cache, batch, toks)
        if toks is rider:
            return continuation_from(pet, hidden, rider_pos, toks)
        more, pos = with_word(pet, batch, toks)
        return continuation_from(pet, pet.hidden_states(more), pos, toks)

    return label_scores_from(pet, logp, rest_of)


def label_scores_from(pet: PETModel, logp: torch.Tensor, rest_of) -> torch.Tensor:
    """Label scores [B, L] from the log-probabilities at the prediction position ``logp`` [B, V] (each
    word's first token) and ``rest_of(tokens)`` [B], a multi-token word's later tokens."""
    head = pet.head
    first = logp.index_select(1, head.ids[..., 0].reshape(-1)).view(logp.shape[0], *head.ids.shape[:2])
    zero = torch.zeros_like(first[:, 0, 0])
    rest = [[rest_of(toks) if len(toks) > 1 else zero for toks in words] + [zero] * (first.shape[2] - len(words))
            for words in head.word_token_ids]
    word_scores = first + torch.stack([torch.stack(r, -1) for r in rest], 1)  # [B, L, W]
    return head.aggregate(word_scores.masked_fill(head.word_mask == 0, 0.0))


def longest_word(pet: PETModel) -> int:
    """Tokens in the longest label word (the cache must hold a pattern and that word's tail)."""
    return max((len(t) for words in pet.head.word_token_ids for t in words), default=1)


def with_word(pet: PETModel, batch: dict, tokens: list[int]) -> tuple[dict, torch.Tensor]:
    """``batch`` with a word's tokens t_1..t_{k-1} written after each row's prediction position, and
    those positions [B, k-1] (where t_2..t_k are predicted)."""
    ids, att = batch["input_ids"], batch["attention_mask"]
    b, k = ids.shape[0], len(tokens)
    toks = torch.tensor(tokens, dtype=torch.long)
    ends = batch["mask_pos"] + 1  # causal rows end at the prediction position
    pos = ends.unsqueeze(1) + torch.arange(k - 1).unsqueeze(0)  # [B, k-1]: where t_1..t_{k-1} go
    ext_ids = torch.cat([ids, ids.new_full((b, k - 1), pet.tokenizer.pad_token_id or 0)], 1)
    ext_att = torch.cat([att, att.new_zeros((b, k - 1))], 1)
    ext_ids.scatter_(1, pos, toks[:-1].expand(b, -1).contiguous())
    ext_att.scatter_(1, pos, 1)
    return dict(batch, input_ids=ext_ids, attention_mask=ext_att), pos


def continuation_cached(pet: PETModel, cache: DynamicCache, batch: dict, tokens: list[int]) -> torch.Tensor:
    """log p(t_2..t_k | pattern, t_1..t_{k-1}) summed, [B]: t_1..t_{k-1} run on ``cache`` (the pattern's
    keys and values) at each row's positions after its prediction position; the cache is cut back after.
    ``batch`` needs only the cache's ``attention_mask`` and each row's ``mask_pos`` (its prediction position)."""
    dev, k = pet.device, len(tokens)
    b = batch["attention_mask"].shape[0]
    tail = torch.tensor(tokens[:-1], dtype=torch.long, device=dev).expand(b, -1)  # [B, k-1]
    pos = (batch["mask_pos"].to(dev) + 1).unsqueeze(1) + torch.arange(k - 1, device=dev)  # [B, k-1]
    att = torch.cat([batch["attention_mask"].to(dev), torch.ones((b, k - 1), dtype=torch.long, device=dev)], 1)
    hidden = pet.model.base_model(input_ids=tail, attention_mask=att, position_ids=pos, past_key_values=cache,
                                  use_cache=True)[0]  # [B, k-1, H]
    cache.crop(-(k - 1))  # negative: drop this word's tokens, keep the pattern's
    return continuation_from(pet, hidden, torch.arange(k - 1).expand(b, -1), tokens)


def continuation_from(pet: PETModel, hidden: torch.Tensor, pos: torch.Tensor, tokens: list[int]) -> torch.Tensor:
    """log p(t_2..t_k | pattern, t_1..t_{k-1}) summed, [B], read off ``hidden`` at ``pos`` [B, k-1]."""
    dev = hidden.device
    h = hidden[torch.arange(hidden.shape[0], device=dev).unsqueeze(1), pos.to(dev)]  # [B, k-1, H]
    logp = torch.log_softmax(vocab_logits_at(pet.model, h).float(), -1)
    toks = torch.tensor(tokens[1:], dtype=torch.long, device=dev)
    return logp.gather(-1, toks.expand(h.shape[0], -1).unsqueeze(-1)).squeeze(-1).sum(-1)
