"""Many templates, one text: each row's common token start runs through the causal LM once.

The automatic-prompt search scores every template of its library on the same texts, and the library's
templates all begin with the text (``"{text_a} It was {mask}"``), so most of each prompt is the same
tokens. Scored one template at a time, every template pays for the whole text again. Here the longest
common token start of a row's prompts runs once into a key/value cache (transformers' ``DynamicCache``);
each template's tail then runs on that cache with its own position ids, and the cache is cropped back
after each tail. The numbers are those of ``lmbff.mask_log_probs`` run per template (float tolerance).
Label words of several tokens ("sci tech") continue each template's tail the same way
(``causal_words``): their scores are those of ``PETModel.predict_logits``.

transformers reuses a prompt's cache across ``generate`` calls but has no batched "one prefix, many
tails" scoring, so the grouping is written here. Only for causal LMs that share one loaded backbone,
without soft prompts or demonstrations: a masked LM reads the text from both sides, so no part of a
prompt is a prefix of the others.
"""
from __future__ import annotations

from typing import Sequence

import torch
from transformers import DynamicCache

from .backbones import autocast, output_head, vocab_logits_at
from .examples import InputExample
from .inference import length_order
from .lmbff import mask_log_probs
from .causal_words import continuation_cached, croppable_cache, label_scores_from, longest_word
from .pet import PETModel
from .training import check_stop


def can_share(models: Sequence[PETModel]) -> bool:
    """True when ``models`` (two or more templates) can be scored together by ``shared_prefix_log_probs``."""
    if len(models) < 2:
        return False
    lm = models[0].model
    # a padded prefix and a tail, each at most max_length, and a label word's tail
    width = 2 * max(m.max_length for m in models) + max(longest_word(m) for m in models)
    return all(m.causal and m.model is lm and m.soft is None and m.demonstrations is None for m in models) \
        and output_head(lm) is not None and croppable_cache(lm, width) is not None


def _common_start(rows: Sequence[Sequence[int]], limit: int) -> int:
    """Length of the token start all ``rows`` share, at most ``limit`` (the prediction positions stay in the tails)."""
    n = 0
    for toks in zip(*rows):
        if n >= limit or any(t != toks[0] for t in toks):
            break
        n += 1
    return n


def _right_padded(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        att[i, : len(r)] = 1
    return ids, att


def shared_prefix_log_probs(models: Sequence[PETModel], examples: Sequence[InputExample],
                            batch_size: int = 32) -> list[torch.Tensor]:
    """Per model, the vocabulary log-probabilities [N, V] at its prediction position (``can_share`` must hold).

    Templates are grouped by the words before their first text (``"{text_a} It was {mask}"`` and
    ``"{text_a} In one word: {mask}"`` share the text; ``"Question: {text_a} ..."`` goes with others
    that start so); a template alone in its group is scored alone.
    """
    return _grouped(models, list(examples), batch_size, False)


def shared_prefix_label_scores(models: Sequence[PETModel], examples: Sequence[InputExample],
                               batch_size: int = 32) -> list[torch.Tensor]:
    """Per model, its label scores [N, L] (``predict_logits``'), label words of several tokens included."""
    return _grouped(models, list(examples), batch_size, True)


def _grouped(models: Sequence[PETModel], examples: list[InputExample], batch_size: int, labels: bool) -> list[torch.Tensor]:
    groups: dict[str, list[int]] = {}
    for k, m in enumerate(models):
        groups.setdefault(m.pattern.template.split("{", 1)[0].strip(), []).append(k)
    outs: list[torch.Tensor] = [None] * len(models)  # type: ignore[list-item]
    for members in groups.values():
        if len(members) == 1:
            outs[members[0]] = _alone(models[members[0]], examples, batch_size, labels)
            continue
        for k, logp in zip(members, _one_group([models[k] for k in members], examples, batch_size, labels)):
            outs[k] = logp
    return outs


def _alone(model: PETModel, examples: list[InputExample], batch_size: int, labels: bool) -> torch.Tensor:
    if labels:
        return torch.from_numpy(model.predict_logits(examples, batch_size)).float()
    return mask_log_probs(model, examples, batch_size)


@torch.no_grad()
def _one_group(models: Sequence[PETModel], examples: list[InputExample], batch_size: int,
               labels: bool) -> list[torch.Tensor]:
    lm, first = models[0].model, models[0]
    for m in models:
        m.eval()
    encoded = [m.encode(examples) for m in models]  # truncation as each template alone would do it
    ids = [[e["input_ids"] for e in enc] for enc in encoded]
    ends = [[e["mask_pos"] for e in enc] for enc in encoded]  # causal: the prediction position
    n, dev = len(examples), first.device
    shared = [_common_start([t[i] for t in ids], min(e[i] for e in ends)) for i in range(n)]
    outs: list[torch.Tensor | None] = [None] * len(models)

    def put(k: int, rows: Sequence[int], logp: torch.Tensor) -> None:
        if outs[k] is None:
            outs[k] = torch.empty((n, logp.shape[1]), dtype=torch.float32)
        outs[k][torch.as_tensor(rows, dtype=torch.long)] = logp

    alone = [i for i in range(n) if shared[i] == 0]  # nothing in common (an empty text): scored per template
    if alone:
        for k, m in enumerate(models):
            put(k, alone, _alone(m, [examples[i] for i in alone], batch_size, labels))
    together = [i for i in range(n) if shared[i] > 0]
    lengths = [max(len(t[i]) for t in ids) for i in together]
    order = [together[j] for j in length_order(lengths)]
    pad = first.tokenizer.pad_token_id or 0
    for start in range(0, len(order), batch_size):
        check_stop()
        rows = order[start : start + batch_size]
        prefix_ids, prefix_att = _right_padded([ids[0][i][: shared[i]] for i in rows], pad)
        cache = DynamicCache(config=lm.config)  # can_share checked it can be cut back
        with autocast(dev):  # as in PETModel.forward
            lm.base_model(input_ids=prefix_ids.to(dev), attention_mask=prefix_att.to(dev), past_key_values=cache,
                          use_cache=True)
            for k in range(len(models)):
                tail_ids, tail_att = _right_padded([ids[k][i][shared[i]:] for i in rows], pad)
                # each row's tail continues at its own prefix length, not after the batch's padding
                pos = torch.tensor([shared[i] for i in rows]).unsqueeze(1) + torch.arange(tail_ids.shape[1])
                hidden = lm.base_model(input_ids=tail_ids.to(dev), attention_mask=torch.cat([prefix_att, tail_att], 1).to(dev),
                                       position_ids=pos.to(dev), past_key_values=cache, use_cache=True)[0]
                at = torch.tensor([ends[k][i] - shared[i] for i in rows], device=hidden.device)
                h = hidden[torch.arange(len(rows), device=hidden.device), at]  # [B, H]
                logp = torch.log_softmax(vocab_logits_at(lm, h).float(), -1)  # [B, V]
                if labels:  # a word's later tokens continue this tail: the cache as it stands, each row's position
                    view = {"attention_mask": torch.cat([prefix_att, tail_att], 1),
                            "mask_pos": torch.tensor([ends[k][i] for i in rows])}
                    logp = label_scores_from(models[k], logp,
                                             lambda toks: continuation_cached(models[k], cache, view, toks))
                put(k, rows, logp.cpu())
                cache.crop(-tail_ids.shape[1])  # negative: drop this tail's tokens (the 5.18 meaning)
    return outs
