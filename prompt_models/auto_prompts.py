"""Automatic prompts: task-agnostic templates x label words, chosen by calibrated zero-shot scoring.

Candidates are the templates of a small task-agnostic library (all mask-final, so they suit a causal
LM as well as a masked one; pair variants when examples have ``text_b``) crossed with label words:
the label names themselves where they are words (``positive``, ``sports``; ``label_names``), else words searched per
template with the LM-BFF label-word search (``lmbff.search_label_words``) on the log-probabilities
with the label-word prior divided out.

Scoring is zero-shot and calibrated: a label's probability under the prompt divided by its mean
probability on unlabeled text (subtracted in log space), which removes the prompt's bias towards
some words (Zhao et al. 2021, "Calibrate before use"). Candidates are ranked on a selection split:
the dev set, or without one a stratified quarter of train (the words are then searched on the other
three quarters). The best candidate fixes the label words; the templates are ranked with those words
and the best few are kept.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Collection, Sequence

import numpy as np
import torch
from scipy.special import log_softmax

from .examples import MAX_SCORED_PER_LABEL, InputExample, at_most_per_label
from .function_words import function_words as function_words_of
from .label_names import codes_among, searches_label_words, texts_of, word_from_label, words_from_label_names, words_used
from .lmbff import search_label_words
from .prompt_scorer import PromptScorer
from .verbalizer import VerbalizerError
from .word_pools import content_words_mask, spellable, text_words, word_mask

SINGLE_TEMPLATES = [
    "{text_a} It was {mask}",
    "{text_a} All in all, it was {mask}",
    "{text_a} This is about {mask}",
    "{text_a} Category: {mask}",
    "{text_a} In summary, {mask}",
    "{text_a} In one word: {mask}",
]
# added when the texts are questions (``function_words.are_questions``): what kind of answer is asked for. The first is
# LM-BFF's hand-written TREC template (its label words are not used: words are still searched); the
# library's templates read a question as a statement ("... ? It was")
QUESTION_TEMPLATES = [
    "Question: {text_a} Type of answer: {mask}",
    "Question: {text_a} Answer type: {mask}",
]
PAIR_TEMPLATES = [
    "{text_a} {text_b} It was {mask}",
    "{text_a} {text_b} In summary, {mask}",
    "Premise: {text_a} Hypothesis: {text_b} Answer: {mask}",
    "{text_a} Question: {text_b} Answer: {mask}",
]
# what the label-word search does, in the choose-prompts cache key: a changed search chooses afresh
# (/3: a label of one example is in the ranking split; many labels draw distinct words)
SEARCH_VERSION = "content-words-of-the-text/12"  # /8: trained_candidates; /9: ABBR a code; /10: swap; /11: paths; /12: names out


def calibrate(scores: np.ndarray, prior_scores: np.ndarray) -> np.ndarray:
    """Label log-probabilities with the prior divided out: ``log p(l|x) - log mean_u p(l|u)``,
    renormalised; ``prior_scores`` are the same prompt's label scores on unlabeled texts."""
    log_prior = np.log(np.exp(log_softmax(prior_scores, -1)).mean(0) + 1e-12)
    return log_softmax(log_softmax(scores, -1) - log_prior, -1)


def stratified_split(examples: Sequence[InputExample], fraction: float = 0.25, seed: int = 0):
    """(fit, held): ``fraction`` of each label held out (at least one, and one kept, per label)."""
    rng = random.Random(seed)
    fit, held = [], []
    by_label: dict[str, list[InputExample]] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex)
    for lab in sorted(by_label):
        group = list(by_label[lab])
        rng.shuffle(group)
        k = min(max(1, round(len(group) * fraction)), len(group) - 1)
        held += group[:k]
        fit += group[k:]
    return fit, held


@dataclass
class Candidate:
    template: str
    label_words: dict[str, list[str]]
    accuracy: float  # calibrated zero-shot accuracy on the selection split
    log_likelihood: float  # mean calibrated log-probability of the gold label (tie-break)
    words_from: str  # "label names" | "search" | "label names + search" (codes' words searched) | "config"


@dataclass
class AutoPromptResult:
    templates: list[str]
    label_words: dict[str, list[str]]
    selection_split: str  # "dev" | "train (stratified 25% held out)"
    candidates: list[Candidate] = field(default_factory=list)  # every candidate, best first
    template_scores: list[dict] = field(default_factory=list)  # templates ranked with the chosen words
    # where words were searched: "" (not searched), the text's content words, or any next word when too few
    # of them are one token for this tokenizer (text in a language the backbone splits into pieces)
    word_pool: str = ""
    # the templates to train and re-rank by trained dev accuracy: ``templates`` plus the best-ranked
    # template written for this kind of text when none of those was chosen (equal to ``templates`` without dev)
    trained_candidates: list[str] = field(default_factory=list)
    # without dev: {"dropped": chosen template, "added": the task's template} where one took the last place
    task_template_swap: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def candidate_templates(pair: bool, extra: Sequence[str] = (), questions: bool = False) -> list[str]:
    library = PAIR_TEMPLATES if pair else SINGLE_TEMPLATES + (QUESTION_TEMPLATES if questions else [])
    return list(dict.fromkeys(list(extra) + library))


def _accuracy(cal: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    return float((cal.argmax(-1) == gold).mean()), float(cal[np.arange(len(gold)), gold].mean())


def select_prompts(
    make_model,
    labels: Sequence[str],
    train: Sequence[InputExample],
    dev: Sequence[InputExample] | None,
    prior_texts: Sequence[InputExample],
    templates: Sequence[str],
    label_words: dict | None = None,
    num_patterns: int = 2,
    words_per_template: int = 3,
    words_per_label: int = 1,
    top_k_per_class: int = 8,
    common_words: int = 300,
    word_pools: Sequence[str] = ("text", "continuations"),
    function_words: Collection[str] | None = None,
    search_words: str = "codes",
    seed: int = 0,
    task_templates: Collection[str] = (),
    task_word_pools: Sequence[str] = (),
) -> AutoPromptResult:
    """The best ``num_patterns`` templates and one set of label words, by calibrated zero-shot accuracy.

    ``label_words`` given (the config's): only templates are chosen. Else the label names where they
    are words; where one is a code (or ``search_words="always"``), ``words_per_template`` searched sets
    per template from each of ``word_pools``:
    "text" (one-token words used at least twice in the train and prior texts, ``function_words`` left
    out), "continuations" (the
    prompt's ``common_words`` likeliest next words on prior texts that are also such text words),
    for experiments also "any-continuations" (those next words, text or not), "content-continuations"
    (those of them that are words and not ``function_words``) and "lexicon:w1,w2,...".

    ``task_templates``: those of ``templates`` written for this kind of text (questions, the user's own).
    Zero-shot ranking underrates them (trec: ranked 5th, yet +9 points once trained), so where none is
    chosen, the best-ranked one joins ``trained_candidates`` (dev exists) or takes the last chosen place.
    ``task_word_pools``: pools searched for those templates only, beside ``word_pools``.
    """
    labels = [str(x) for x in labels]
    texts = texts_of(list(train) + list(prior_texts))
    used = words_used(list(train) + list(prior_texts))
    fixed = label_words or words_from_label_names(labels, used)
    if fixed and not label_words:
        try:
            make_model(templates[0], fixed)
        except VerbalizerError:  # a label name the tokenizer cannot spell: searched words instead
            fixed = None
    # searched words compete with word names only when asked: ranked on a few examples, one of dozens
    # of searched sets scores best by chance (AG News, 10 examples: 1.0 on 4 held out, 0.65 on test)
    searching = searches_label_words(labels, label_words, search_words, used) or (not label_words and fixed is None)
    # names that are words keep them where only some labels are codes (joy / anger / none): only the codes'
    # words are searched, as whole sets ranked as usual with the names written in
    named = {}
    if not (label_words or fixed or search_words == "always"):
        reader = make_model(templates[0], None)
        codes = codes_among(labels, used)
        named = {lab: [w] for lab in labels if lab not in codes and (w := word_from_label(lab)) and spellable(reader, w)}
        if len(named) == len(labels):  # every name a word, two the same ("Sci_Tech", "sci tech"): all searched
            named = {}
    if dev:
        fit, sel, split = list(train), list(dev), "dev"
    elif not searching:  # nothing is fitted before the ranking, so all of train can rank the templates
        fit, sel, split = list(train), list(train), "train (all of it: no label words are searched)"
    else:
        fit, sel = stratified_split(train, 0.25, seed)
        split = "train (stratified 25% held out; label words searched on the other 75%)"
        if not sel:  # one example per label: none can be held out, so the ranking sees the examples searched on
            fit, sel, split = list(train), list(train), "train (one example per label: none held out)"
        lone = sorted({ex.label for ex in fit} - {ex.label for ex in sel})
        if lone:  # a label of one example: ranked without it, any prompt that never says it could score 1.0
            sel += [ex for ex in fit if ex.label in lone]
            split += f"; labels {lone} have one example, ranked on it too"
    capped = at_most_per_label(fit, MAX_SCORED_PER_LABEL, seed), at_most_per_label(sel, MAX_SCORED_PER_LABEL, seed)
    if (len(capped[0]), len(capped[1])) != (len(fit), len(sel)):
        split += f"; at most {MAX_SCORED_PER_LABEL} examples per label of each ({len(capped[1])} of {len(sel)} ranked)"
        fit, sel = capped
    gold = np.array([labels.index(ex.label) for ex in sel])
    scorer = PromptScorer(make_model)
    placeholder = fixed  # None: any verbalizer (only the vocabulary scores are read)
    if function_words is None:  # the text's own language's (English: scikit-learn's list)
        function_words = function_words_of(texts)
    words_of_text = text_words(texts, exclude=function_words)

    def score(template: str, words: dict, source: str) -> Candidate | None:
        try:
            s = scorer.label_scores(template, words, "sel", sel)
            p = scorer.label_scores(template, words, "prior", prior_texts)
        except VerbalizerError:  # a label name the tokenizer cannot spell
            return None
        acc, ll = _accuracy(calibrate(s, p), gold)
        return Candidate(template, words, acc, ll, source)

    # every template's scores on each split in one pass (each text runs once: shared_prefix)
    for name, examples in [("sel", sel), ("prior", prior_texts)] + ([("fit", fit)] if searching else []):
        scorer.prefetch(templates, name, examples, None if searching else fixed)
    cands: list[Candidate] = []
    in_text, word_pool = None, ""
    searched: list[tuple[str, dict]] = []
    for template in templates:
        if fixed:
            c = score(template, fixed, "config" if label_words else "label names")
            cands += [c] if c else []
        if not searching:
            continue
        model = make_model(template, placeholder)
        prior_vocab = scorer.vocab_log_probs(template, "prior", prior_texts, placeholder)
        fit_vocab = scorer.vocab_log_probs(template, "fit", fit, placeholder)
        # words ranked by how much likelier they are on one label's examples than on the (balanced) fit
        # set as a whole (raw log-probabilities rank "the" first; ratios to a prior rank rare tokens first)
        contrast = fit_vocab - (fit_vocab.logsumexp(0) - math.log(len(fit)))
        vocab_size = prior_vocab.shape[1]
        if in_text is None:
            in_text = word_mask(model, words_of_text, vocab_size)
            word_pool = f"content words of the text ({int(in_text.sum())} of them one token)"
            if int(in_text.sum()) < len(labels):  # text with too few words (codes, numbers): any continuation
                word_pool = (f"any next word: only {int(in_text.sum())} of the text's {len(words_of_text)} content "
                             "words are one token for this tokenizer")
                in_text = torch.ones(vocab_size, dtype=torch.bool)
        common = torch.zeros(vocab_size, dtype=torch.bool)
        common[prior_vocab.logsumexp(0).topk(min(common_words, vocab_size)).indices] = True
        pools = {"text": in_text, "continuations": common & in_text, "any-continuations": common}
        template_pools = list(dict.fromkeys([*word_pools, *(task_word_pools if template in task_templates else ())]))
        if "content-continuations" in template_pools:  # experiment: next words that are words, text or not
            pools["content-continuations"] = common & content_words_mask(model, common.nonzero().flatten().tolist(),
                                                                          function_words, vocab_size)
        found = []
        # a code label must not draw a word that names another label: such a set was dropped whole, and with
        # many labels every set was (TREC-50: its 27 names were lost to the fallback below)
        names = word_mask(model, [w for ws in named.values() for w in ws], vocab_size) if named else None
        for pool in template_pools:
            allowed = pools[pool] if pool in pools else word_mask(model, pool.split(":", 1)[1].split(","), vocab_size)
            allowed = allowed & ~names if names is not None else allowed
            if int(allowed.sum()) >= len(labels):
                found += search_label_words(model, fit, labels, top_k_per_class, words_per_template, seed=seed,
                                            logp=contrast.masked_fill(~allowed, -1e9), max_scan=int(allowed.sum()),
                                            words_per_label=words_per_label)
        seen = []
        for f in found:
            searched += [(template, f["label_words"])]
            words = {lab: named.get(lab, ws) for lab, ws in f["label_words"].items()}
            same = {lab: frozenset(ws) for lab, ws in words.items()}  # a label's words in any order
            if same in seen or len({w for ws in words.values() for w in ws}) < sum(map(len, words.values())):
                continue  # the same set once the names are written in, or a name searched for a code label
            seen.append(same)
            c = score(template, words, "search" if not named else "label names + search")
            cands += [c] if c else []
    if not cands and named:  # every searched set said a name for a code label: the searched sets as they are
        cands = [c for t, words in searched if (c := score(t, words, "search (every set collided with a name)"))]
    if not cands:
        raise ValueError("automatic prompts: no candidate could be scored (label names not spellable, search empty)")
    cands.sort(key=lambda c: (-c.accuracy, -c.log_likelihood))
    words = cands[0].label_words
    ranked = [score(t, words, "chosen words") for t in templates]
    ranked = sorted((c for c in ranked if c), key=lambda c: (-c.accuracy, -c.log_likelihood))
    chosen = [c.template for c in ranked[:num_patterns]]
    written = [c.template for c in ranked if c.template in task_templates]
    passed_over = written[:1] if not set(written) & set(chosen) else []
    extra = passed_over if split == "dev" else []
    swap = {}
    if passed_over and split != "dev":  # no dev to re-rank on: trained, a question template was at least as good
        # as the zero-shot choice in all 4 dev checks (trec, RESULTS.md), and a user's own is what they asked for
        swap = {"dropped": chosen[-1], "added": passed_over[0]}
        chosen = chosen[:-1] + passed_over
    return AutoPromptResult(
        templates=chosen,
        label_words=words,
        selection_split=split,
        candidates=cands,
        template_scores=[{"template": c.template, "accuracy": c.accuracy, "log_likelihood": c.log_likelihood}
                         for c in ranked],
        word_pool=word_pool,
        trained_candidates=chosen + extra,
        task_template_swap=swap,
    )


def zero_shot_logits(make_model, templates: Sequence[str], label_words: dict, examples: Sequence[InputExample],
                     prior_texts: Sequence[InputExample]) -> np.ndarray:
    """Calibrated zero-shot ensemble: the mean over templates of calibrated label log-probabilities."""
    scorer = PromptScorer(make_model)
    scorer.prefetch(templates, "x", examples, label_words)
    scorer.prefetch(templates, "prior", prior_texts, label_words)
    outs = [calibrate(scorer.label_scores(t, label_words, "x", examples),
                      scorer.label_scores(t, label_words, "prior", prior_texts)) for t in templates]
    return np.mean(outs, 0)
