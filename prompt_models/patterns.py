"""Hard patterns (cloze templates) and their encoding into model inputs.

A template is plain text with placeholders:

* ``{text_a}`` / ``{text_b}``: the example's texts (truncated, longest first, to fit ``max_length``)
* ``{mask}``: where the model predicts the label word (exactly once)
* ``{soft}`` or ``{soft:N}``: N trainable virtual tokens (soft prompts, see ``soft_prompts``)

Example: ``"{text_a} It was {mask} ."``
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from .examples import InputExample

PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::(\d+))?\}")
KNOWN = {"text_a", "text_b", "mask", "soft"}
ENCODE_CHUNK = 4096  # texts tokenized per batched call: the ids of a chunk are held at once


class PatternError(ValueError):
    """A template that cannot be used: says what is wrong with it."""


@dataclass(frozen=True)
class Segment:
    kind: str  # "literal", "text_a", "text_b", "mask", "soft"
    value: str = ""
    count: int = 0  # for soft


def parse_template(template: str) -> list[Segment]:
    if not isinstance(template, str) or not template.strip():
        raise PatternError("template is empty")
    segments: list[Segment] = []
    pos = 0
    for m in PLACEHOLDER.finditer(template):
        if m.start() > pos:
            segments.append(Segment("literal", template[pos : m.start()]))
        name, num = m.group(1), m.group(2)
        if name not in KNOWN:
            raise PatternError(f"template {template!r}: unknown placeholder {{{name}}}; known: {sorted(KNOWN)}")
        if name == "soft":
            n = int(num) if num else 1
            if n < 1:
                raise PatternError(f"template {template!r}: {{soft:{num}}} needs at least one token")
            segments.append(Segment("soft", count=n))
        elif num is not None:
            raise PatternError(f"template {template!r}: {{{name}:{num}}} takes no count")
        else:
            segments.append(Segment(name))
        pos = m.end()
    if pos < len(template):
        segments.append(Segment("literal", template[pos:]))
    leftover = [s.value for s in segments if s.kind == "literal" and ("{" in s.value or "}" in s.value)]
    if leftover:
        raise PatternError(f"template {template!r}: malformed placeholder near {leftover[0]!r}")
    n_mask = sum(s.kind == "mask" for s in segments)
    if n_mask != 1:
        raise PatternError(f"template {template!r} must contain {{mask}} exactly once (found {n_mask})")
    if not any(s.kind == "text_a" for s in segments):
        raise PatternError(f"template {template!r} must contain {{text_a}}")
    return segments


@dataclass
class Pattern:
    template: str
    segments: list[Segment] = field(init=False, repr=False)

    def __post_init__(self):
        self.segments = parse_template(self.template)

    @property
    def uses_text_b(self) -> bool:
        return any(s.kind == "text_b" for s in self.segments)

    @property
    def num_soft_tokens(self) -> int:
        return sum(s.count for s in self.segments if s.kind == "soft")

    def check_causal(self) -> None:
        """A causal LM scores the label word as the continuation of the text before it, so nothing
        may follow ``{mask}`` (text after it would be unseen by the prediction)."""
        at = [s.kind for s in self.segments].index("mask")
        if any(s.kind != "literal" or s.value.strip() for s in self.segments[at + 1 :]):
            raise PatternError(
                f"template {self.template!r}: a causal LM predicts the label word as the continuation of the "
                "text before it, so {mask} must end the template (move the text after it before it, "
                "e.g. \"{text_a} It was {mask}\")"
            )
        before = self.segments[at - 1] if at else None
        if before is None or before.kind != "literal" or not before.value[-1:].isspace():
            # the label word is scored as " great" (one token after a space): the pattern must say so
            raise PatternError(f"template {self.template!r}: a causal LM needs a space right before {{mask}}")

    def check_example(self, example: InputExample) -> None:
        if self.uses_text_b and not example.text_b:
            raise PatternError(f"template {self.template!r} uses {{text_b}} but the example has none")


def _space_sensitive(tokenizer) -> bool:
    """True for byte-level BPE style tokenizers where a leading space changes tokens."""
    a = tokenizer.encode("a b", add_special_tokens=False)
    b = tokenizer.encode("a", add_special_tokens=False) + tokenizer.encode("b", add_special_tokens=False)
    return a != b


class PatternEncoder:
    """Turns (pattern, example[, demonstrations]) into input ids with one prediction position.

    Masked LM: the ids hold a mask token and ``mask_pos`` is its index. ``demonstrations`` are
    ``(example, label_word)`` pairs rendered with the same template, the mask replaced by the word,
    and appended after the query (LM-BFF style) within the length budget.

    Causal LM (``causal=True``): the ids end where the label word would start and ``mask_pos`` is
    the last index, whose next-token distribution scores the word. Demonstrations come *before*
    the query (a causal model only sees what precedes), each ending with its label word and a newline.
    """

    def __init__(self, tokenizer, max_length: int = 128, soft_token_id: int | None = None, causal: bool = False):
        self.causal = causal
        if tokenizer.mask_token_id is None and not causal:
            raise PatternError("the tokenizer has no mask token: a masked language model is required")
        self.tokenizer = tokenizer
        self.max_length = max_length
        filler = tokenizer.pad_token_id if causal else tokenizer.mask_token_id
        self.soft_token_id = soft_token_id if soft_token_id is not None else (filler or 0)
        self.space_sensitive = _space_sensitive(tokenizer)
        self._literals: dict[str, list[int]] = {}
        self.batch_ids: dict[str, list[int]] = {}  # texts tokenized ahead by ``encode_all``
        if causal:
            # whatever the tokenizer itself puts in front of a text (Gemma's <bos>), nothing behind
            plain = tokenizer.encode("x", add_special_tokens=False)
            full = tokenizer.encode("x", add_special_tokens=True)
            self.prefix = full[: len(full) - len(plain)] if full[-len(plain):] == plain else []
            self.suffix = []
            self.demo_sep = self._tok("\n")
        elif tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
            self.prefix, self.suffix = [tokenizer.cls_token_id], [tokenizer.sep_token_id]
        else:
            self.prefix = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
            self.suffix = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def _tok(self, text: str) -> list[int]:
        if not text:
            return []
        ids = self.batch_ids.get(text)
        return list(ids) if ids is not None else self.tokenizer.encode(text, add_special_tokens=False)

    def _literal(self, value: str) -> list[int]:
        # a pattern's literal text is the same for every example: tokenized once, not once per text
        ids = self._literals.get(value)
        if ids is None:
            ids = self._literals[value] = self._tok(value)
        return list(ids)

    def _text_tok(self, text: str, after_space: bool) -> list[int]:
        return self._tok(self._spaced(text, after_space))

    def _spaced(self, text: str, after_space: bool) -> str:
        return " " + text if self.space_sensitive and after_space else text

    def _text_slots(self, pattern: Pattern) -> set[tuple[str, bool]]:
        """(text field, follows a space) for each text placeholder, as ``_render`` walks them."""
        slots, prev = set(), ""
        for seg in pattern.segments:
            if seg.kind in ("text_a", "text_b"):
                slots.add((seg.kind, prev == "" or prev[-1:].isspace()))
            prev = seg.value if seg.kind == "literal" else "x"
        return slots

    def _render(self, pattern: Pattern, example: InputExample, word: str | None):
        """Token pieces of one rendering: list of (kind, ids)."""
        pattern.check_example(example)
        pieces = []
        prev = ""
        segments = pattern.segments
        if self.causal:
            pattern.check_causal()
            segments = segments[: [s.kind for s in segments].index("mask") + 1]
        for i, seg in enumerate(segments):
            after_space = prev == "" or prev[-1:].isspace()
            if seg.kind == "literal":
                value = seg.value
                if self.causal and segments[i + 1 :][:1] and segments[i + 1].kind == "mask":
                    # "It was {mask}": the word carries the space (" great" is one BPE token,
                    # "was " + "great" is not what the model saw in pre-training)
                    value = value.rstrip()
                pieces.append(("literal", self._literal(value)))
                prev = seg.value
            elif seg.kind in ("text_a", "text_b"):
                text = example.text_a if seg.kind == "text_a" else (example.text_b or "")
                pieces.append((seg.kind, self._text_tok(text, after_space)))
                prev = "x"
            elif seg.kind == "mask":
                if word is None:
                    pieces.append(("mask", [] if self.causal else [self.tokenizer.mask_token_id]))
                else:
                    pieces.append(("literal", self._text_tok(word, after_space)))
                prev = "x"
            elif seg.kind == "soft":
                if word is None:  # demonstrations carry no soft tokens: only the query's are trained
                    pieces.append(("soft", [self.soft_token_id] * seg.count))
                    prev = "x"
        return pieces

    @staticmethod
    def _truncate(pieces, budget: int):
        """Shrink text pieces, longest first, until the total fits ``budget``."""
        total = sum(len(ids) for _, ids in pieces)
        excess = total - budget
        if excess <= 0:
            return pieces
        text_idx = [i for i, (k, _) in enumerate(pieces) if k in ("text_a", "text_b")]
        lens = {i: len(pieces[i][1]) for i in text_idx}
        while excess > 0:
            i = max(text_idx, key=lambda j: lens[j]) if text_idx else None
            if i is None or lens[i] == 0:
                break
            lens[i] -= 1
            excess -= 1
        if excess > 0:
            return None
        return [(k, ids[: lens[i]] if i in lens else ids) for i, (k, ids) in enumerate(pieces)]

    def encode_all(self, pattern: Pattern, examples: Sequence[InputExample], demonstrations=None) -> list[dict]:
        """``encode`` of every example, their texts tokenized in one call of the tokenizer. A fast
        tokenizer runs a batch in Rust, on several threads where there are cores: 1.3-2.1x the
        speed of one text at a time on one thread here, 2.0-3.7x on two (benchmarks/encoding.py),
        which matters once a GPU labels thousands of texts a second. ``demonstrations`` is a
        function of the example, or None.

        Not thread-safe: a fast tokenizer's truncation setting is state of the tokenizer, so one
        encoder (one PETModel) must not be used by two threads at once. Each task loads its own.
        """
        out: list[dict] = []
        for start in range(0, len(examples), ENCODE_CHUNK):  # iPET encodes a whole unlabeled split
            chunk = examples[start : start + ENCODE_CHUNK]
            texts = {
                self._spaced((ex.text_a if kind == "text_a" else ex.text_b) or "", after_space)
                for kind, after_space in self._text_slots(pattern)
                for ex in chunk
            }
            texts.discard("")
            try:
                self.batch_ids = self._tokenize_batch(list(texts))
                out += [self.encode(pattern, ex, demonstrations(ex) if demonstrations else None) for ex in chunk]
            finally:
                self.batch_ids = {}
        return out

    def _tokenize_batch(self, texts: list[str]) -> dict[str, list[int]]:
        if not texts:
            return {}
        kwargs: dict = dict(add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)
        if getattr(self.tokenizer, "truncation_side", "right") == "right":
            # no text piece keeps more than max_length tokens (``_truncate`` cuts longest-first and
            # keeps the start), so a longer tail is never used: cut it in the tokenizer, not in Python
            kwargs.update(truncation=True, max_length=self.max_length)
        return dict(zip(texts, self.tokenizer(texts, **kwargs)["input_ids"]))

    def min_length(self, pattern: Pattern) -> int:
        """The shortest ``max_length`` that fits ``pattern`` with one token of each text: what a
        config check compares ``model.max_length`` with before any example is read."""
        fixed = sum(len(ids) for k, ids in self._render(pattern, InputExample("x", "x"), None) if k not in ("text_a", "text_b"))
        return len(self.prefix) + len(self.suffix) + fixed + 1

    def encode(self, pattern: Pattern, example: InputExample, demonstrations=None) -> dict:
        budget = self.max_length - len(self.prefix) - len(self.suffix)
        query = self._render(pattern, example, None)
        fixed = sum(len(ids) for k, ids in query if k not in ("text_a", "text_b"))
        if fixed + 1 > budget:
            raise PatternError(
                f"template {pattern.template!r} alone needs {fixed} tokens, more than max_length={self.max_length}"
            )
        demo_ids: list[int] = []
        if demonstrations:
            sep = self.demo_sep if self.causal else (self.suffix or [])
            # the query keeps at least half of the budget; each demonstration gets an equal share of the rest
            share = max(0, (budget // 2) // len(demonstrations))
            for demo, word in demonstrations:
                rendered = self._truncate(self._render(pattern, demo, word), max(0, share - len(sep)))
                if rendered is None:
                    continue
                demo_ids += [t for _, ids in rendered for t in ids] + sep
        query = self._truncate(query, budget - len(demo_ids))
        if query is None:
            raise PatternError(f"example {example.guid!r} cannot fit max_length={self.max_length}")
        ids = list(self.prefix) + (demo_ids if self.causal else [])
        mask_pos = -1
        soft_positions: list[int] = []
        for kind, piece in query:
            if kind == "mask":
                mask_pos = len(ids) - 1 if self.causal else len(ids)
            if kind == "soft":
                soft_positions += list(range(len(ids), len(ids) + len(piece)))
            ids += piece
        if mask_pos < 0:
            raise PatternError(f"template {pattern.template!r}: a causal LM needs text before {{mask}}")
        if not self.causal:
            ids += self.suffix + demo_ids
        return {"input_ids": ids, "mask_pos": mask_pos, "soft_positions": soft_positions}
