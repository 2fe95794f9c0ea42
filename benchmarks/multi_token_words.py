"""Cost of multi-token label words with a causal backbone: the shipped scoring (``causal_words.causal_label_scores``:
the pattern runs once into a key/value cache, each multi-token word's later tokens run as a short tail on it)
against one extra pass over the whole prompt per multi-token word (the code of 2026-12-04, kept here as the
baseline), same process, alternating order.

Two label sets, template ``{text_a} This is about {mask}``: AG News' names (``sci tech`` is two tokens for
SmolLM2) and Yahoo Answers' ten topic names as `pet` reads them (``society culture``, ``computers
internet``, ...: eight of ten are several tokens). Texts: the first 256 SST-2 phrases of 20 words or more
(``assets/sst2_phrases.txt.gz``; the cost depends on length, not topic).

    nice -n 5 .venv/bin/python benchmarks/multi_token_words.py
"""
from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
BACKBONE = Path("~/.cache/pet-pipeline/models/smollm2-135m-instruct").expanduser()
LABEL_SETS = {
    "AG News names": ["World", "Sports", "Business", "Sci/Tech"],
    "Yahoo Answers names": ["Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
                            "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
                            "Family & Relationships", "Politics & Government"],
}


def extra_pass_scores(model, batch: dict) -> torch.Tensor:
    """The baseline: first tokens from one pass, each multi-token word's rest from a pass of its own."""
    from prompt_models.causal_words import continuation_from, with_word

    head = model.head
    logp = torch.log_softmax(model.mask_vocab_logits(batch).float(), -1)
    first = logp.index_select(1, head.ids[..., 0].reshape(-1)).view(logp.shape[0], *head.ids.shape[:2])
    zero = torch.zeros_like(first[:, 0, 0])

    def rest_of(toks):
        if len(toks) == 1:
            return zero
        ext, pos = with_word(model, batch, toks)
        return continuation_from(model, model.hidden_states(ext), pos, toks)

    rest = [[rest_of(t) for t in words] + [zero] * (first.shape[2] - len(words)) for words in head.word_token_ids]
    return head.aggregate((first + torch.stack([torch.stack(r, -1) for r in rest], 1)).masked_fill(head.word_mask == 0, 0.0))


def measure(model, examples) -> dict:
    shipped = model.forward

    def run(baseline: bool) -> tuple[float, np.ndarray]:
        model.forward = (lambda b: extra_pass_scores(model, b)) if baseline else shipped
        start = time.perf_counter()
        with torch.no_grad():
            out = model.predict_logits(examples, 32)
        return time.perf_counter() - start, out

    run(False)  # warm-up
    times = {"cached pattern, short tails (shipped)": [], "extra pass per word (before)": []}
    outs = {}
    for rep in range(2):
        for baseline in ([False, True] if rep % 2 == 0 else [True, False]):
            name = "extra pass per word (before)" if baseline else "cached pattern, short tails (shipped)"
            s, outs[name] = run(baseline)
            times[name].append(round(s, 2))
    model.forward = shipped
    a, b = outs.values()
    return {"seconds": times, "texts_per_s": {k: round(len(examples) / min(v), 1) for k, v in times.items()},
            "max_abs_score_diff": float(np.abs(a - b).max()), "argmax_agreement": float((a.argmax(-1) == b.argmax(-1)).mean())}


def main() -> None:
    from prompt_models.label_names import words_from_label_names
    from prompt_models.examples import InputExample
    from prompt_models.pet import PETModel
    from prompt_models.training import configure_threads
    from prompt_models.verbalizer import word_token_ids

    configure_threads()
    phrases = gzip.open(ROOT / "benchmarks/assets/sst2_phrases.txt.gz", "rt").read().splitlines()
    texts = [t for t in phrases if len(t.split()) >= 20][:256]
    examples = [InputExample(t) for t in texts]
    result = {"machine": "2-core CPU VM (AMD EPYC), no GPU", "texts": len(examples),
              "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
              "backbone": "SmolLM2-135M-Instruct", "label_sets": {}}
    for name, labels in LABEL_SETS.items():
        words = words_from_label_names(labels)
        model = PETModel.from_pretrained(str(BACKBONE), "{text_a} This is about {mask}", words, max_length=96)
        multi = sum(len(word_token_ids(model.tokenizer, w[0], model.head_space_sensitive)) > 1 for w in words.values())
        result["label_sets"][name] = dict(label_words=words, multi_token_words=multi, **measure(model, examples))
        print(name, json.dumps(result["label_sets"][name]), flush=True)
    (ROOT / "benchmarks/multi_token_words_results.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
