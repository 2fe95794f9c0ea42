"""Where automatic label words are searched: the content words of the user's own text, as vocabulary masks
for one backbone's tokenizer (``auto_prompts.select_prompts`` ranks words within these pools).

A searched word is one the task's text uses, not a word piece (" nons") or a word chosen with benchmark labels
in mind; function words are left out, since on 16 examples per label one ("with", "only") can separate the
classes by chance.
"""
from __future__ import annotations

from typing import Collection, Sequence

import regex
import torch

from .function_words import ANSWER_WORDS, WORD, english, word_tokens
from .verbalizer import VerbalizerError, word_token_ids

# text_words leaves out function_words.english() (scikit-learn's list, keeping the answer words).
# With enough texts to tell, a word in more than this share of them is left out too, in any language
# (a function word no list holds). No content word of the six LM-BFF tasks comes near it ("film": 18%
# of SST-2's train + prior texts).
MAX_TEXT_SHARE, MIN_TEXTS_FOR_SHARE = 0.3, 50


def spellable(model, word: str) -> bool:
    try:
        word_token_ids(model.tokenizer, word, model.head_space_sensitive)
        return True
    except VerbalizerError:
        return False


def any_words(tokenizer) -> dict[str, list[str]]:
    """Two words the tokenizer spells, for a model built only to read vocabulary scores at the mask."""
    found = []
    for token in tokenizer.get_vocab():
        word = token.lstrip("Ġ▁")
        if word.isalpha() and word not in found:
            try:
                word_token_ids(tokenizer, word, False)
            except VerbalizerError:
                continue
            found.append(word)
            if len(found) == 2:
                break
    return {"a": [found[0]], "b": [found[1]]}


def text_words(texts: Sequence[str], min_count: int = 2, exclude: Collection[str] | None = None) -> list[str]:
    """Lower-case words that occur at least ``min_count`` times in ``texts`` (the user's own text),
    most frequent first: the pool label words are searched in, so that a searched word is one the
    task's text uses, not a word piece (" nons") or a word chosen with benchmark labels in mind.
    Left out: ``exclude`` (default: English function words), and (from ``MIN_TEXTS_FOR_SHARE`` texts on) words in
    over ``MAX_TEXT_SHARE`` of them."""
    exclude = english() if exclude is None else exclude
    counts: dict[str, int] = {}
    in_texts: dict[str, int] = {}
    for text in texts:
        words = [w for w in word_tokens(text) if len(w) >= 2]
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        for word in set(words):
            in_texts[word] = in_texts.get(word, 0) + 1
    common = set()
    if len(texts) >= MIN_TEXTS_FOR_SHARE:
        common = {w for w, n in in_texts.items() if n > MAX_TEXT_SHARE * len(texts)} - ANSWER_WORDS
    return [w for w, c in sorted(counts.items(), key=lambda kv: -kv[1])
            if c >= min_count and w not in exclude and w not in common]


def word_mask(model, words: Sequence[str], vocab_size: int) -> torch.Tensor:
    """The ``words`` that are one token for this model, as a vocabulary mask."""
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    for word in words:
        try:
            ids = word_token_ids(model.tokenizer, word, model.head_space_sensitive)
        except VerbalizerError:
            continue
        if len(ids) == 1 and ids[0] < vocab_size:
            mask[ids[0]] = True
    return mask


def content_words_mask(model, token_ids: Sequence[int], exclude: Collection[str], vocab_size: int) -> torch.Tensor:
    """The tokens among ``token_ids`` that spell a whole word of letters (not a piece, a number or a
    stop word), as a vocabulary mask."""
    words = {model.tokenizer.decode([i]).strip().lower() for i in token_ids}
    return word_mask(model, [w for w in words if len(w) >= 2 and regex.fullmatch(WORD, w) and w not in exclude], vocab_size)
