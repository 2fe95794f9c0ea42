"""Design check for automatic label words, on split seeds the task benchmark does not use.

Prompts are chosen (``select_prompts``) on split seed 21's train and dev; the chosen prompts'
calibrated zero-shot ensemble is then scored on split seed 87's train + dev (labeled texts from the
tasks' training sets, disjoint from the test sets); ``--swap`` the other way round. Variants differ
only in where label words are searched (``word_pools``). Prior texts: 128 of the 1,000 unlabeled texts
tasks_bench.py samples.

    nice -n 5 .venv/bin/python benchmarks/auto_prompt_design.py [--tasks ...] [--variants ...]

Rows are appended to benchmarks/auto_prompt_design.json as each (task, variant) finishes (resumable).
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
OUT = ROOT / "benchmarks" / "auto_prompt_design.json"
BACKBONE = Path("~/.cache/pet-pipeline/models/smollm2-135m-instruct").expanduser()
from prompt_models.auto_prompts import QUESTION_TEMPLATES  # noqa: E402 (the library's, added for questions)

# the lexicon the first version searched (removed: it held words chosen with TREC/Subj labels in mind)
OLD_LEXICON = subprocess.run(
    ["git", "show", "1d57e2b:prompt_models/auto_prompts.py"], cwd=ROOT, capture_output=True, text=True
).stdout.split('LEXICON = """')[1].split('"""')[0].split()
# variant -> (word pools, function words left out of the text words)
VARIANTS = {
    "old: lexicon + any continuations": (["lexicon:" + ",".join(OLD_LEXICON), "any-continuations"], ()),
    "new: text words + continuations in text": (["text", "continuations"], ()),
    "text words only": (["text"], ()),
    "continuations in text only": (["continuations"], ()),
    "shipped: content words of the text + continuations among them": (["text", "continuations"], None),
    # the prompt's likeliest next words that are content words, in the text or not ("person" after a question)
    "shipped + content-word continuations": (["text", "continuations", "content-continuations"], None),
    # the shipped search with ANSWER_TEMPLATES added to the library (EXTRA_TEMPLATES)
    "shipped + answer templates": (["text", "continuations"], None),
    "shipped + answer templates + content-word continuations": (["text", "continuations", "content-continuations"],
                                                                None),
    # the shipped search with QUESTION_TEMPLATES added when the texts are questions (trec)
    "shipped + question templates": (["text", "continuations"], None),
    "shipped + question templates + content-word continuations": (["text", "continuations", "content-continuations"],
                                                                  None),
    # questions read only through the question templates (the library's read a question as a statement),
    # with the shipped pools and with the prompt's content-word continuations ("person" after "Type of answer:")
    "question templates only": (["text", "continuations"], None),
    "question templates only + content-word continuations": (["text", "continuations", "content-continuations"],
                                                             None),
    # the candidates as the pipeline has them today (question templates for questions, a passed-over one
    # trained too), with 1 word per label and with 3 (PETAL): each searched word followed by the label's
    # next two top words (``words_per_label``)
    "shipped as the pipeline runs it": (["text", "continuations"], None),
    "shipped, 3 words per label": (["text", "continuations"], None),
    # reference rows, not candidates for shipping: the hand-written config's label words (chosen with the
    # labels' meaning known), the templates still ranked on dev; then its patterns too. They tell whether
    # the searched words or the zero-shot ranking is what falls short
    "reference: hand-written label words": (["text"], None),
    "reference: hand-written patterns and label words": (["text"], None),
}
# mask-final answer templates for text that asks something (questions, requests), in no task's words
ANSWER_TEMPLATES = ["{text_a} Answer: {mask}", "{text_a} The answer is {mask}"]
EXTRA_TEMPLATES = {"shipped + answer templates": ANSWER_TEMPLATES,
                   "shipped + answer templates + content-word continuations": ANSWER_TEMPLATES,
                   "shipped + question templates": QUESTION_TEMPLATES,
                   "shipped + question templates + content-word continuations": QUESTION_TEMPLATES}
WORDS_PER_LABEL = {"shipped as the pipeline runs it": 1, "shipped, 3 words per label": 3}
HAND_WORDS = {"trec": {"0": ["description"], "1": ["thing"], "2": ["abbreviation"], "3": ["person"],
                       "4": ["place"], "5": ["number"]},
              "SST-2": {"0": ["terrible"], "1": ["great"]}}
HAND_PATTERNS = {"trec": ["{text_a} The answer is a {mask}", "Question: {text_a} Type of answer: {mask}"]}
TASKS = ["SST-2", "sst-5", "mr", "cr", "subj", "trec"]


def split_seeds(row: dict) -> tuple[int, int]:
    """(choose on, held out): rows written before ``--swap`` existed are 21 / 87."""
    return tuple(row.get("split_seeds", (21, 87)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=TASKS)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=OUT, help="results file (rows appended; resumable)")
    ap.add_argument("--swap", action="store_true", help="choose on seed 87, hold out seed 21 (a second draw)")
    args = ap.parse_args()
    from tasks_bench import DESIGN_SEEDS, design_splits
    seeds = DESIGN_SEEDS[::-1] if args.swap else DESIGN_SEEDS

    from pet_io.atomic import write_json_atomic

    from prompt_models import auto_prompts
    from prompt_models.auto_prompts import SINGLE_TEMPLATES, select_prompts, zero_shot_logits
    from prompt_models.word_pools import any_words
    from prompt_models.backbones import CAUSAL, load_language_model, load_tokenizer
    from prompt_models.examples import InputExample
    from prompt_models.function_words import are_questions
    from prompt_models.patterns import Pattern
    from prompt_models.pet import PETModel
    from prompt_models.training import configure_threads
    from prompt_models.verbalizer import Verbalizer

    configure_threads()
    tok, lm = load_tokenizer(BACKBONE), load_language_model(BACKBONE, CAUSAL)
    placeholder = any_words(tok)

    def make(template, words):
        return PETModel(lm, tok, Pattern(template), Verbalizer(words or placeholder), 128)

    # vocabulary scores reused across variants (same template, same texts)
    cache: dict = {}
    original = auto_prompts.PromptScorer.vocab_log_probs

    def cached(self, template, name, examples, words):
        key = (template, len(examples), examples[0].text_a)
        if key not in cache:
            cache[key] = original(self, template, name, examples, words)
        return cache[key]

    auto_prompts.PromptScorer.vocab_log_probs = cached
    res = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    for task in args.tasks:
        ex, held, labels, unlabeled = design_splits(task, seeds)
        unl = [line.rstrip("\n") for line in open(unlabeled, encoding="utf-8")][1:]
        prior = [InputExample(t, None, None) for t in random.Random(0).sample(unl, 128)]
        cache.clear()
        for variant in args.variants:
            if any(r["task"] == task and r["variant"] == variant and split_seeds(r) == seeds for r in res["rows"]):
                continue
            t0 = time.time()
            pools, function_words = VARIANTS[variant]
            kw = {} if function_words is None else {"function_words": function_words}  # None: the default
            if variant.startswith("reference") and task not in (HAND_PATTERNS if "patterns" in variant else HAND_WORDS):
                continue
            if variant.startswith("reference"):
                kw["label_words"] = HAND_WORDS[task]
            templates = SINGLE_TEMPLATES + EXTRA_TEMPLATES.get(variant, [])
            if variant in WORDS_PER_LABEL:  # the pipeline's candidates today: question templates for questions
                questions = are_questions([e.text_a for e in ex["train"]])
                templates = auto_prompts.candidate_templates(False, questions=questions)
                kw["words_per_label"] = WORDS_PER_LABEL[variant]
                kw["task_templates"] = QUESTION_TEMPLATES  # trained beside the chosen two where not among them
            if variant.startswith("question templates only"):
                templates = list(QUESTION_TEMPLATES)
            if variant == "reference: hand-written patterns and label words":
                templates = HAND_PATTERNS[task]
            result = select_prompts(make, labels, ex["train"], ex["dev"], prior, templates, word_pools=pools, **kw)
            logits = zero_shot_logits(make, result.templates, result.label_words, held, prior)
            gold = np.array([labels.index(e.label) for e in held])
            row = dict(task=task, variant=variant, split_seeds=list(seeds), templates=result.templates,
                       label_words=result.label_words, trained_candidates=result.trained_candidates,
                       selection_dev_accuracy=result.template_scores[0]["accuracy"],
                       held_out_accuracy=float((logits.argmax(-1) == gold).mean()), n_held_out=len(held),
                       seconds=round(time.time() - t0, 1))
            print(json.dumps(row), flush=True)
            res["rows"].append(row)
            write_json_atomic(args.out, res, indent=1)


if __name__ == "__main__":
    main()
