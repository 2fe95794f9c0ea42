"""The function words of the user's text, in its own language: words a label-word search leaves out.

On 16 examples per label a function word ("with", "der") can separate the classes by chance, and then
says nothing about them after training. English uses scikit-learn's list (what the six-task benchmark
ran with). Another language uses the list of the `stop-words` package for it: its lists hold function
words only (German has no "gut"/"schlecht", which stopwords-iso's list has). The language is the one
whose list covers the most word tokens of the text; a stop-word profile is the classic cheap
identifier, and no model or download is needed.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Sequence

import regex

# words that answer a question or negate: label words of yes/no and sentiment tasks, never left out
ANSWER_WORDS = frozenset({"yes", "no", "not", "none", "nicht", "kein", "keine", "ja", "nein", "pas", "non", "oui",
                          "si", "sí", "não", "sim", "niet", "nee", "nej", "inte"})
MIN_COVERAGE = 0.15  # of the text's word tokens; English prose is about 40-50% function words


WORD = r"\p{L}[\p{L}\p{M}]*"  # a letter, then letters and combining marks (Devanagari's vowel signs, Thai's, NFD accents)


QUESTION_SHARE = 0.5  # texts ending with "?" for a task to count as questions


def are_questions(texts: Sequence[str]) -> bool:
    """Whether at least ``QUESTION_SHARE`` of ``texts`` end with a question mark (auto_prompts then adds
    its question templates; `pet init` says so)."""
    return bool(texts) and sum(str(t).rstrip().endswith("?") for t in texts) >= QUESTION_SHARE * len(texts)


def word_tokens(text: str) -> list[str]:
    """The lower-case words (any script) of ``text``: what a word is, here and for label words."""
    return regex.findall(WORD, unicodedata.normalize("NFC", str(text)).lower())


@lru_cache(maxsize=None)
def english() -> frozenset[str]:
    """scikit-learn's English list, less the answer words. Imported on first use: scikit-learn took 1.8 s of
    the start of every `pet` command (`pet predict` included) that never reads it."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) - ANSWER_WORDS


@lru_cache(maxsize=None)
def _lists() -> dict[str, frozenset[str]]:
    from stop_words import LANGUAGE_MAPPING, get_stop_words

    return {code: frozenset(w.lower() for w in get_stop_words(code)) for code in LANGUAGE_MAPPING}


def text_language(texts: Sequence[str]) -> str | None:
    """ISO code of the language whose stop words cover most word tokens of ``texts``; None if none covers
    ``MIN_COVERAGE`` (too little text, or a script written without spaces)."""
    tokens = [w for t in texts for w in word_tokens(t)]
    if not tokens:
        return None
    coverage = {code: sum(w in words for w in tokens) / len(tokens) for code, words in _lists().items()}
    best = max(coverage, key=coverage.get)
    return best if coverage[best] >= MIN_COVERAGE else None


def function_words(texts: Sequence[str]) -> frozenset[str]:
    """English's list, and the stop words of the text's language where that is another one."""
    language = text_language(texts)
    if language in (None, "en"):
        return english()
    return english() | (_lists()[language] - ANSWER_WORDS)
