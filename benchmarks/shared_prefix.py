"""Prompt scoring with and without the shared prefix (``prompt_models/shared_prefix.py``), one process.

What the automatic-prompt search scores before it trains anything: the vocabulary log-probabilities of
SmolLM2-135M under every library template, on the texts it ranks with (dev 32, prior 128, train 32 of
LM-BFF's SST-2 split seed 13; subj likewise). Both ways run on the same texts, alternated, ``--repeats``
times; the rows give wall seconds of each and the largest difference of a log-probability.

    nice -n 5 .venv/bin/python benchmarks/shared_prefix.py [--tasks SST-2 subj] [--repeats 2]

Writes benchmarks/shared_prefix_results.json (the machine named; one run, so the ratio is fair even on
a loaded machine, the seconds less so).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from prompt_models.auto_prompts import SINGLE_TEMPLATES  # noqa: E402
from prompt_models.word_pools import any_words  # noqa: E402
from prompt_models.backbones import CAUSAL, load_language_model, load_tokenizer  # noqa: E402
from prompt_models.examples import InputExample  # noqa: E402
from prompt_models.lmbff import mask_log_probs  # noqa: E402
from prompt_models.patterns import Pattern  # noqa: E402
from prompt_models.pet import PETModel  # noqa: E402
from prompt_models.shared_prefix import shared_prefix_log_probs  # noqa: E402
from prompt_models.training import configure_threads  # noqa: E402
from prompt_models.verbalizer import Verbalizer  # noqa: E402

OUT = ROOT / "benchmarks" / "shared_prefix_results.json"
BACKBONE = Path("~/.cache/pet-pipeline/models/smollm2-135m-instruct").expanduser()
DATA = ROOT.parent / "shared" / "data"


def _texts(task: str) -> list[InputExample]:
    split = DATA / "lmbff_kshot" / task / "16-13"
    tsv = (split / "train.tsv").exists()
    read = (lambda f: pd.read_csv(f, sep="\t", quoting=3, dtype=str)["sentence"]) if tsv else \
        (lambda f: pd.read_csv(f, header=None, dtype=str)[1])
    ext = "tsv" if tsv else "csv"
    pool = pd.read_csv(DATA / "lmbff_train_pools" / task / "train.tsv", sep="\t", quoting=3, dtype=str)["sentence"]
    prior = random.Random(0).sample(list(pool), 128)
    texts = list(read(split / f"dev.{ext}")) + prior + list(read(split / f"train.{ext}"))
    return [InputExample(str(t)) for t in texts]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=["SST-2", "subj"])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    configure_threads()
    tok, lm = load_tokenizer(str(BACKBONE)), load_language_model(str(BACKBONE), CAUSAL)
    words = any_words(tok)
    models = [PETModel(lm, tok, Pattern(t), Verbalizer(words), 128) for t in SINGLE_TEMPLATES]
    rows = []
    for task in args.tasks:
        examples = _texts(task)
        for rep in range(args.repeats):
            t0 = time.perf_counter()
            alone = [mask_log_probs(m, examples, 32) for m in models]
            t1 = time.perf_counter()
            shared = shared_prefix_log_probs(models, examples, 32)
            t2 = time.perf_counter()
            diff = max(float((a - s).abs().max()) for a, s in zip(alone, shared))
            agree = min(float((a.argmax(-1) == s.argmax(-1)).float().mean()) for a, s in zip(alone, shared))
            rows.append(dict(task=task, repeat=rep, texts=len(examples), templates=len(models),
                             alone_s=round(t1 - t0, 2), shared_s=round(t2 - t1, 2), speedup=round((t1 - t0) / (t2 - t1), 2),
                             max_abs_log_prob_diff=diff, min_top1_agreement=agree, loadavg=os.getloadavg()[0]))
            print(rows[-1], flush=True)
    OUT.write_text(json.dumps({"machine": f"2-core CPU VM ({platform.processor() or platform.machine()}), no GPU; "
                                          f"torch {torch.__version__}, {torch.get_num_threads()} threads",
                               "backbone": "smollm2-135m-instruct", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
