"""LM-BFF (Gao et al. 2021): automatic template generation and automatic label-word search.

Template generation works with any local generator:

* seq2seq (T5 style, sentinel tokens ``<extra_id_0..2>``): the input is
  ``text_a <extra_id_0> word <extra_id_1> [text_b]`` and the generator fills the gaps;
  a candidate ``(X, Y)`` becomes the template ``{text_a} X {mask} Y [{text_b}]``.
* causal LM: the continuation ``X`` of ``text_a`` before the label word is generated;
  a candidate becomes ``{text_a} X {mask} .`` (``{text_a} X {mask}`` for a causal backbone).

With a causal PET backbone only candidates that end at ``{mask}`` are kept (``for_causal=True``).

Candidates from all training examples are pooled and ranked by the generator's total
log-likelihood over the whole training set (LM-BFF's aggregated objective); the best few are then
fine-tuned briefly and ranked on dev by the caller.

Label-word search: per class the top-k vocabulary tokens by mean log-probability at the mask (or,
for a causal LM, as the next token), assignments pruned by zero-shot training accuracy, the best
re-ranked on dev after brief fine-tuning by the caller. A token is a candidate only if it decodes
to a plain word whose verbalizer encoding is exactly that token (``Ġgreat`` in byte-level BPE,
``▁great`` in SentencePiece, ``great`` in WordPiece), so the word scored here is the token
sequence that training later uses.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM

from .backbones import CAUSAL, autocast, load_language_model, load_pretrained, load_tokenizer
from .examples import InputExample, gold_indices
from .inference import run_batches
from .patterns import Pattern, PatternError
from .pet import PETModel
from .training import check_stop
from .verbalizer import Verbalizer, VerbalizerError, word_token_ids

SENTINELS = ("<extra_id_0>", "<extra_id_1>", "<extra_id_2>")


class GeneratorError(ValueError):
    pass


@dataclass
class Generator:
    model: object
    tokenizer: object
    kind: str  # "seq2seq" | "causal"


def load_generator(path: str) -> Generator:
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except OSError as exc:
        raise GeneratorError(f"generator path {path!r} is not a local model folder: {exc}") from exc
    tok = load_tokenizer(path)
    if config.is_encoder_decoder:
        model = load_pretrained(AutoModelForSeq2SeqLM, path)
        missing = [s for s in SENTINELS if tok.convert_tokens_to_ids(s) in (None, tok.unk_token_id)]
        if missing:
            raise GeneratorError(f"seq2seq generator {path!r} lacks the T5 sentinel tokens {missing}")
        kind = "seq2seq"
    else:
        model = load_language_model(path, CAUSAL)
        kind = "causal"
    model.eval()
    return Generator(model, tok, kind)


def _clean(fragment: str) -> str:
    fragment = re.sub(r"<[^>]*>|\[[A-Z]+\]", " ", fragment)  # leftover special tokens
    fragment = fragment.replace("{", " ").replace("}", " ")
    return " ".join(fragment.split())


def _template_from(x: str, y: str, pair: bool, for_causal: bool) -> str:
    # a causal backbone reads the word last; a masked one gets LM-BFF's closing "." when Y is empty
    parts = ["{text_a}", x, "{mask}", y or ("" if for_causal else ".")]
    if pair:
        parts.append("{text_b}")
    return " ".join(p for p in parts if p)


def _seq2seq_io(ex: InputExample, word: str, x: str | None = None, y: str | None = None):
    s0, s1, s2 = SENTINELS
    src = f"{ex.text_a} {s0} {word} {s1}" + (f" {ex.text_b}" if ex.text_b else "")
    tgt = None if x is None else f"{s0} {x} {s1} {y} {s2}"
    return src, tgt


def parse_seq2seq(text: str) -> tuple[str, str] | None:
    """(X, Y) from ``<extra_id_0> X <extra_id_1> Y <extra_id_2>``; a missing leading sentinel is tolerated."""
    s0, s1, s2 = SENTINELS
    body = text.split(s0, 1)[1] if s0 in text else text
    x, found, rest = body.partition(s1)
    y = rest.split(s2, 1)[0] if found else ""
    x, y = _clean(x), _clean(y)
    return (x, y) if (x or y) else None


@torch.no_grad()
def _candidates(gen: Generator, examples: Sequence[InputExample], words: dict[str, str], beam: int, max_new: int) -> dict:
    tok, model = gen.tokenizer, gen.model
    found: dict[tuple[str, str], int] = {}
    for ex in examples:
        word = words[ex.label]
        if gen.kind == "seq2seq":
            src, _ = _seq2seq_io(ex, word)
        else:
            src = ex.text_a
        enc = tok(src, return_tensors="pt", truncation=True, max_length=256, return_token_type_ids=False).to(model.device)
        out = model.generate(
            **enc,
            num_beams=beam,
            num_return_sequences=beam,
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        )
        for seq in out:
            if gen.kind == "seq2seq":
                parsed = parse_seq2seq(tok.decode(seq, skip_special_tokens=False))
            else:
                parsed = (_clean(tok.decode(seq[enc["input_ids"].shape[1] :], skip_special_tokens=True)), "")
            if parsed is None or not (parsed[0] or parsed[1]):
                continue
            found[parsed] = found.get(parsed, 0) + 1
    return found


@torch.no_grad()
def _total_log_likelihood(gen: Generator, examples: Sequence[InputExample], words: dict[str, str], x: str, y: str) -> float:
    tok, model = gen.tokenizer, gen.model
    total = 0.0
    for ex in examples:
        word = words[ex.label]
        if gen.kind == "seq2seq":
            src, tgt = _seq2seq_io(ex, word, x, y)
            enc = tok(src, return_tensors="pt", truncation=True, max_length=256, return_token_type_ids=False).to(model.device)
            labels = tok(tgt, return_tensors="pt").input_ids.to(model.device)
            n = labels.shape[1]
            total += -float(model(**enc, labels=labels).loss) * n
        else:
            prompt = tok(ex.text_a, return_tensors="pt").input_ids
            cont = tok(" " + x + " " + word, add_special_tokens=False, return_tensors="pt").input_ids
            ids = torch.cat([prompt, cont], dim=1)
            labels = ids.clone()
            labels[:, : prompt.shape[1]] = -100
            total += -float(model(input_ids=ids.to(model.device), labels=labels.to(model.device)).loss) * cont.shape[1]
    return total


def generate_templates(
    gen: Generator,
    examples: Sequence[InputExample],
    verbalizer: Verbalizer,
    num_candidates: int = 8,
    beam_width: int = 8,
    max_new_tokens: int = 12,
    examples_per_prompt: int | None = None,
    seed: int = 0,
    for_causal: bool = False,
) -> list[dict]:
    """Ranked candidate templates: ``[{"template", "score", "count"}, ...]`` (best first)."""
    if not examples:
        raise ValueError("template generation needs labeled examples")
    words = {lab: ws[0] for lab, ws in verbalizer.label_words.items()}
    pool = list(examples)
    if examples_per_prompt and len(pool) > examples_per_prompt:
        pool = random.Random(seed).sample(pool, examples_per_prompt)
    pair = any(ex.text_b for ex in examples)
    found = _candidates(gen, pool, words, beam_width, max_new_tokens)
    # rank the most frequent few by the aggregated log-likelihood over all pooled examples
    shortlist = sorted(found, key=lambda k: -found[k])[: max(num_candidates * 2, num_candidates)]
    scored = []
    for x, y in shortlist:
        template = _template_from(x, y, pair, for_causal)
        try:
            pattern = Pattern(template)
            if for_causal:
                pattern.check_causal()
        except PatternError:
            continue
        scored.append({"template": template, "score": _total_log_likelihood(gen, pool, words, x, y), "count": found[(x, y)]})
    scored.sort(key=lambda d: -d["score"])
    unique, seen = [], set()
    for s in scored:
        if s["template"] not in seen:
            seen.add(s["template"])
            unique.append(s)
    return unique[:num_candidates]


# ------------------------------------------------------------------------------------------ label words
_WORD = re.compile(r"^[a-z][a-z'-]+$")


def mask_log_probs(model: PETModel, examples: Sequence[InputExample], batch_size: int = 32) -> torch.Tensor:
    """Vocabulary log-probabilities [N, V] at the prediction position, through the one inference routine."""
    model.eval()
    encoded = model.encode(examples)

    def run(idx):
        batch = model.collate([encoded[j] for j in idx])
        with autocast(model.device) if model.causal else contextlib.nullcontext():  # as in PETModel.forward
            return torch.log_softmax(model.mask_vocab_logits(batch).float(), -1)

    return torch.from_numpy(run_batches([len(e["input_ids"]) for e in encoded], run, batch_size, None))


def search_label_words(
    model: PETModel,
    examples: Sequence[InputExample],
    labels: Sequence[str],
    top_k_per_class: int = 10,
    num_candidates: int = 20,
    max_combinations: int = 20000,
    seed: int = 0,
    max_scan: int = 5000,
    logp: torch.Tensor | None = None,
    words_per_label: int = 1,
) -> list[dict]:
    """Candidate verbalizers ranked by zero-shot accuracy on ``examples``:
    ``[{"label_words": {label: [word, ...]}, "zero_shot_accuracy": float}, ...]``. ``logp``: the
    examples' vocabulary scores at the mask when the caller has them (e.g. calibrated ones).
    ``words_per_label`` > 1: each label's searched word is followed by the next of its top words that no
    other label's examples score higher (PETAL's several words per label, Schick et al. 2020); the
    accuracy is the single words'."""
    labels = list(labels)
    by_label = {lab: [i for i, ex in enumerate(examples) if ex.label == lab] for lab in labels}
    empty = [lab for lab, idx in by_label.items() if not idx]
    if empty:
        raise ValueError(f"label-word search needs examples of every label; none for {empty}")
    logp = mask_log_probs(model, examples) if logp is None else logp
    words: dict[int, str | None] = {}

    def word_of(token_id: int) -> str | None:
        if token_id not in words:
            words[token_id] = _single_token_word(model.tokenizer, token_id, model.head_space_sensitive)
        return words[token_id]

    tops = {}
    for lab in labels:
        ranked = logp[by_label[lab]].mean(0).argsort(descending=True).tolist()
        tops[lab] = [t for t in ranked[:max_scan] if word_of(t)][:top_k_per_class]
        if not tops[lab]:
            raise ValueError(f"label-word search found no whole-word token for label {lab!r} in the top {max_scan}")
    gold = torch.as_tensor(gold_indices(examples, labels))
    combos = itertools.product(*(tops[lab] for lab in labels))
    # Python integers: numpy's int64 product wraps at 21+ labels of 8 words (8**22 == 0 mod 2**64), and the
    # exhaustive loop over 8**22 combinations never ended
    total = math.prod(len(tops[lab]) for lab in labels)
    if total > max_combinations:
        rng = random.Random(seed)
        # independent draws, a repeated word rejected: uniform over the assignments of distinct words
        combos = [tuple(rng.choice(tops[lab]) for lab in labels) for _ in range(max_combinations)]
        if sum(len(set(c)) == len(c) for c in combos) < num_candidates:
            # many labels whose top words overlap: nearly every draw repeats a word, so labels (in random
            # order) take words no other label took
            combos += [c for c in (_distinct_words(tops, labels, rng) for _ in range(max_combinations)) if c]
    scored = {}
    for i, combo in enumerate(combos):
        if i % 1000 == 0:  # no model call in this loop to poll a stop (`pet search` runs it on a worker thread)
            check_stop()
        if len(set(combo)) < len(combo) or combo in scored:
            continue
        pred = logp[:, list(combo)].argmax(-1)
        scored[combo] = float((pred == gold).float().mean())
    ranked = sorted(scored.items(), key=lambda kv: -kv[1])
    # an extra word must lean to its label: one that another label's examples score higher would blur the two
    # (and a word masked out of the caller's pool, -1e9 for every label, leans nowhere)
    by_label_score = torch.stack([logp[by_label[lab]].mean(0) for lab in labels])
    own = torch.where(by_label_score.max(0).values > -1e8, by_label_score.argmax(0), -1)

    def words_of(combo) -> dict[str, list[str]]:
        out = {}
        for i, (lab, t) in enumerate(zip(labels, combo)):
            more = [u for u in tops[lab] if u not in combo and int(own[u]) == i][: words_per_label - 1]
            out[lab] = [word_of(t)] + [word_of(u) for u in more]
        return out

    found, sets = [], set()
    for combo, acc in ranked:
        label_words = words_of(combo)
        # with several words per label, (great, good) and (good, great) are one set: counted once
        key = tuple(frozenset(ws) for ws in label_words.values())
        if key not in sets:
            sets.add(key)
            found.append({"label_words": label_words, "zero_shot_accuracy": acc})
        if len(found) == num_candidates:
            break
    return found


def _distinct_words(tops: dict[str, list[int]], labels: Sequence[str], rng: random.Random) -> tuple[int, ...] | None:
    order, taken, pick = rng.sample(list(labels), len(labels)), set(), {}
    for lab in order:
        free = [t for t in tops[lab] if t not in taken]
        if not free:
            return None
        pick[lab] = rng.choice(free)
        taken.add(pick[lab])
    return tuple(pick[lab] for lab in labels)


def _single_token_word(tokenizer, token_id: int, space_sensitive: bool) -> str | None:
    """The plain word that the verbalizer encodes as exactly ``[token_id]``, else None."""
    if token_id in tokenizer.all_special_ids:
        return None
    text = tokenizer.decode([token_id])
    if space_sensitive:
        if not text.startswith(" "):
            return None  # a word-internal piece: "great" must follow a space in the pattern
        text = text[1:]
    if not _WORD.match(text):
        return None
    try:
        return text if word_token_ids(tokenizer, text, space_sensitive) == [token_id] else None
    except VerbalizerError:
        return None
