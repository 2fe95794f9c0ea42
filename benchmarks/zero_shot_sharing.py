"""Zero-shot scoring of many templates with label words of several tokens: the shipped scoring (each text
runs once for all templates that start with it, ``shared_prefix.shared_prefix_label_scores``; each word's
later tokens continue every template's tail on that cache) against one template at a time (each template a
full pass, its words' tails on its own cache: what ran before 2026-12-06), same process, alternating order.

What it costs a user: `pet run` scores candidate templates zero-shot to choose prompts, and scores the chosen
ones on dev and test for the calibrated zero-shot reference row. With label names as words, one word of
several tokens (AG News' ``sci tech``) used to turn off the sharing of the text between templates.

Label sets: AG News' names and Yahoo Answers' ten names (eight of ten are several tokens for SmolLM2).
Templates: the two a run keeps (reference row) and the six of the single-text library (choosing).
Texts: the first 128 SST-2 phrases of 20 words or more; prior texts: the next 32.

    nice -n 5 .venv/bin/python benchmarks/zero_shot_sharing.py
"""
from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
OUT = ROOT / "benchmarks" / "zero_shot_sharing_results.json"
BACKBONE = Path("~/.cache/pet-pipeline/models/smollm2-135m-instruct").expanduser()


def main() -> None:
    from multi_token_words import LABEL_SETS

    from prompt_models import prompt_scorer
    from prompt_models.auto_prompts import SINGLE_TEMPLATES, zero_shot_logits
    from prompt_models.label_names import words_from_label_names
    from prompt_models.backbones import CAUSAL, load_language_model, load_tokenizer
    from prompt_models.examples import InputExample
    from prompt_models.patterns import Pattern
    from prompt_models.pet import PETModel
    from prompt_models.training import configure_threads
    from prompt_models.verbalizer import Verbalizer

    configure_threads()
    phrases = gzip.open(ROOT / "benchmarks/assets/sst2_phrases.txt.gz", "rt").read().splitlines()
    long = [t for t in phrases if len(t.split()) >= 20]
    examples, prior = [InputExample(t) for t in long[:128]], [InputExample(t) for t in long[128:160]]
    tok, lm = load_tokenizer(str(BACKBONE)), load_language_model(str(BACKBONE), CAUSAL)
    make = lambda t, w: PETModel(lm, tok, Pattern(t), Verbalizer(w), 96)  # noqa: E731 (one backbone, as the stage)
    shared_ok = prompt_scorer.can_share
    result = json.loads(OUT.read_text()) if OUT.exists() else {
        "machine": "2-core CPU VM (AMD EPYC), no GPU", "backbone": "SmolLM2-135M-Instruct", "texts": len(examples),
        "prior_texts": len(prior), "mean_words": round(float(np.mean([len(e.text_a.split()) for e in examples])), 1),
        "rows": {}}
    for name, labels in LABEL_SETS.items():
        words = words_from_label_names(labels)
        for templates in (SINGLE_TEMPLATES[:2], SINGLE_TEMPLATES):
            key = f"{name}, {len(templates)} templates"
            if key in result["rows"]:  # resumable: a finished row is kept
                continue

            def run(shared: bool):
                prompt_scorer.can_share = shared_ok if shared else (lambda models: False)
                start = time.perf_counter()
                out = zero_shot_logits(make, templates, words, examples, prior)
                return time.perf_counter() - start, out

            run(True)  # warm-up
            seconds = {"shared text (shipped)": [], "one template at a time (before)": []}
            outs = {}
            for rep in range(2):
                for shared in ([True, False] if rep == 0 else [False, True]):
                    label = "shared text (shipped)" if shared else "one template at a time (before)"
                    s, outs[label] = run(shared)
                    seconds[label].append(round(s, 2))
            prompt_scorer.can_share = shared_ok
            a, b = outs.values()
            n = len(examples) + len(prior)
            result["rows"][key] = {
                "seconds": seconds, "texts_per_s": {k: round(n / min(v), 1) for k, v in seconds.items()},
                "speedup": round(min(seconds["one template at a time (before)"]) / min(seconds["shared text (shipped)"]), 2),
                "max_abs_score_diff": float(np.abs(a - b).max()),
                "argmax_agreement": float((a.argmax(-1) == b.argmax(-1)).mean())}
            print(key, json.dumps(result["rows"][key]), flush=True)
            OUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
