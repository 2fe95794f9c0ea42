"""Label names read as label words: ``positive`` and ``Sci_Tech`` are words, ``0``, ``LABEL_3``, ``pos`` and
TREC's ``ABBR`` are codes (their words are searched), and a path's last name (``ENTY:animal``) is its word
where the task's text uses it and no sibling shares it."""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Collection, Sequence

import regex

from .examples import InputExample
from .function_words import ANSWER_WORDS, WORD, word_tokens

# short label names that are abbreviations, not words a language model would say about a text
_CODES = {"pos", "neg", "neu", "obj", "subj", "yes_", "no_", "na", "n/a", "none"}
_NAME = rf"{WORD}(?: {WORD})*"  # words of any script ("négatif", "Küche", "खेल") and single spaces
# scripts written without spaces, where a word of one or two characters is common ("体育" sports, "好" good)
_NO_SPACES = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")


# a path of names: TREC's fine classes ("ENTY:animal"), 20 Newsgroups' ("rec.sport.hockey")
_PATH = regex.compile(r"[\p{L}][\p{L}\p{N}_\-]*(?:[:.][\p{L}][\p{L}\p{N}_\-]*)+")


def leaf_of(label: str) -> str | None:
    """The last name of a label that is a path (``"ENTY:animal"`` -> ``"animal"``), else None: the path's
    other names are what all of its siblings share."""
    name = unicodedata.normalize("NFC", str(label).strip())
    return regex.split(r"[:.]", name)[-1] if _PATH.fullmatch(name) else None


def word_from_label(label: str) -> str | None:
    """``"Sci_Tech"``, ``"Sci/Tech"`` -> ``"sci tech"``, ``"OfficeHolder"`` -> ``"office holder"``, ``"no"``,
    ``"体育"`` -> themselves; ``"ENTY:animal"`` -> ``"animal"`` (``leaf_of``); ``"0"``, ``"pos"``,
    ``"LABEL_3"``, ``"n/a"`` -> None (a code)."""
    name = leaf_of(label) or unicodedata.normalize("NFC", str(label))
    if name[:1].isupper():  # DBpedia's "MeanOfTransportation"; "iPhone" and "eBay" stay one word
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    text = " ".join(re.sub(r"[_\-/&]+", " ", name).split()).lower()
    if not regex.fullmatch(_NAME, text) or text in _CODES or re.search(r"\blabel\b", text):
        return None
    if _NO_SPACES.search(text):
        return text
    if all(len(w) == 1 for w in text.split()) or (len(text) < 3 and text not in ANSWER_WORDS):
        return None  # "a", "n a", "ok": letters or abbreviations ("no", "ja", "si" are words)
    return text


def abbreviations(labels: Sequence[str], used_words: Collection[str] | None = None) -> set[str]:
    """The names that are abbreviations, hence codes: where every name is 2-4 capital letters (TREC's
    ``ABBR`` ... ``NUM``; ``PER``, ``ORG``, ``LOC``, ``MISC``), those the task's text never uses as a word
    (``used_words``, lower case: ``LOVE`` and ``JOY`` in a text that says them stay words; so do ``YES``/``NO``).
    A set with a longer capital name (``HIGH``/``MEDIUM``/``LOW``) is words written in capitals."""
    names = {lab: str(lab).strip() for lab in labels}
    if not names or not all(re.fullmatch(r"[A-Z]{2,4}", n) for n in names.values()):
        return set()
    return {lab for lab, n in names.items() if n.lower() not in ANSWER_WORDS and n.lower() not in (used_words or ())}


def unread_leaves(labels: Sequence[str], used_words: Collection[str] | None = None) -> set[str]:
    """Path labels (``leaf_of``) whose last name is no word the task's text uses (TREC's ``HUM:ind``,
    ``ENTY:cremat``) or is another label's too (``LOC:other``, ``NUM:other``): codes, their words searched.
    Without the text's words (``used_words`` None) only the shared ones."""
    words = {lab: word_from_label(lab) for lab in labels if leaf_of(lab)}
    count = Counter(words.values())
    return {lab for lab, w in words.items() if w is None or count[w] > 1
            or (used_words is not None and not all(t in used_words for t in word_tokens(w)))}


def codes_among(labels: Sequence[str], used_words: Collection[str] | None = None) -> set[str]:
    """The label names that are codes though ``word_from_label`` reads a word off them: ``abbreviations``
    and ``unread_leaves``."""
    return abbreviations(labels, used_words) | unread_leaves(labels, used_words)


def words_from_label_names(labels: Sequence[str], used_words: Collection[str] | None = None
                           ) -> dict[str, list[str]] | None:
    """Label words read off the label names, or None when any name is a code (``word_from_label``,
    ``codes_among``)."""
    codes = codes_among(labels, used_words)
    words = {lab: None if lab in codes else word_from_label(lab) for lab in labels}
    if any(w is None for w in words.values()) or len(set(words.values())) < len(words):
        return None
    return {lab: [w] for lab, w in words.items()}


def texts_of(examples: Sequence[InputExample]) -> list[str]:
    """Every text of ``examples`` (both texts of a pair), the text label words are read from."""
    return [t for ex in examples for t in (ex.text_a, ex.text_b) if t]


def words_used(examples: Sequence[InputExample]) -> set[str]:
    """The lower-case words ``examples`` use: tells a label name the text says ("LOVE") from a code ("LOC")."""
    return {w for t in texts_of(examples) for w in word_tokens(t)}


def searches_label_words(labels: Sequence[str], label_words: dict | None, search_words: str = "codes",
                         used_words: Collection[str] | None = None) -> bool:
    """Whether ``select_prompts`` searches label words: the config gives none, and a label name is a
    code or ``search_words`` is "always" (it also searches when a word name cannot be spelled)."""
    return not label_words and (search_words == "always" or words_from_label_names(labels, used_words) is None)
