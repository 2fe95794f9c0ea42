"""Benchmark: prompt-based methods vs supervised fine-tuning on LM-BFF 16-shot splits.

Same model, same 16-per-class training set, same step budget; test accuracy per (task, split seed).

    python benchmarks/compare_prompting.py --tasks SST-2 --seeds 13 42 --steps 100 \
        --out benchmarks/RESULTS.md [--generator /path/to/t5]

Methods: finetune (sequence classifier, CE), pet (hard pattern, manual words), demo (pet +
one demonstration per class, similarity-filtered), prompt_tuning, p_tuning, prefix_tuning (soft
prompts, LM tuned too), lora (pet with PEFT LoRA adapters only, 4x the learning rate), auto_words (LM-BFF label-word search + pet), ipet (3 patterns, one iPET
generation over unlabeled pool data, ensemble), auto_template (LM-BFF template search; only with
--generator, a local T5 or causal LM).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from prompt_models.adapters import LoraSettings  # noqa: E402
from prompt_models.data import DataSpec, InputExample, load_examples  # noqa: E402
from prompt_models.demonstrations import DemonstrationSampler, sentence_embeddings  # noqa: E402
from prompt_models.distill import SequenceClassifier  # noqa: E402
from prompt_models.ensemble import ensemble_weights, merge_logits  # noqa: E402
from prompt_models.ipet import build_generation_sets  # noqa: E402
from prompt_models.lmbff import generate_templates, load_generator, search_label_words  # noqa: E402
from prompt_models.pet import PETModel  # noqa: E402
from prompt_models.soft_prompts import SoftPromptConfig  # noqa: E402
from prompt_models.training import TrainConfig, set_seed  # noqa: E402
from prompt_models.verbalizer import Verbalizer  # noqa: E402

SHARED = ROOT.parent / "shared"
TASKS = {
    # name: (folder, reader kwargs, labels, templates, label words)
    "SST-2": (
        "SST-2",
        dict(text_a="sentence", label="label"),
        ["0", "1"],
        ["{text_a} It was {mask} .", "{text_a} All in all , it was {mask} .", "Just {mask} ! {text_a}"],
        {"0": ["terrible"], "1": ["great"]},
    ),
    "mr": (
        "mr",
        dict(text_a="1", label="0", header=False),
        ["0", "1"],
        ["{text_a} It was {mask} .", "{text_a} All in all , it was {mask} .", "Just {mask} ! {text_a}"],
        {"0": ["terrible"], "1": ["great"]},
    ),
    "trec": (
        "trec",
        dict(text_a="1", label="0", header=False),
        [str(i) for i in range(6)],
        ["{mask} : {text_a}", "Q : {text_a} A : {mask}", "{text_a} The answer is a {mask} ."],
        {"0": ["description"], "1": ["entity"], "2": ["expression"], "3": ["human"], "4": ["location"], "5": ["number"]},
    ),
}


def load_task(name: str, seed: int, test_limit: int | None):
    folder, kw, labels, templates, words = TASKS[name]
    base = SHARED / "data" / "lmbff_kshot" / folder / f"16-{seed}"
    ext = ".tsv" if (base / "train.tsv").exists() else ".csv"
    train = load_examples(DataSpec(str(base / f"train{ext}"), **kw), labels)
    dev = load_examples(DataSpec(str(base / f"dev{ext}"), **kw), labels)
    test = load_examples(DataSpec(str(base / f"test{ext}"), **kw, limit=test_limit, seed=0 if test_limit else None), labels)
    pool_dir = SHARED / "data" / "lmbff_train_pools" / folder
    pool_file = pool_dir / "train.tsv"
    unlabeled = []
    if pool_file.exists():
        unlabeled = load_examples(DataSpec(str(pool_file), text_a="sentence", label=None, limit=500, seed=0), require_labels=False)
    return dict(train=train, dev=dev, test=test, labels=labels, templates=templates, words=words, unlabeled=unlabeled)


def pet_model(model_path, template, words, soft=None, max_length=128):
    return PETModel.from_pretrained(model_path, template, Verbalizer(words), max_length, soft)


def run_method(method, model_path, data, cfg, seed, generator):
    train, test, labels, templates, words, unlabeled = (
        data[k] for k in ("train", "test", "labels", "templates", "words", "unlabeled")
    )
    t0 = time.time()
    set_seed(seed)  # new heads / prompt encoders are initialised from the global generator
    if method == "finetune":
        clf = SequenceClassifier.from_pretrained(model_path, labels)
        onehot = np.eye(len(labels))[[labels.index(e.label) for e in train]]
        clf.train_model(train, onehot, TrainConfig(**{**cfg.to_dict(), "temperature": 1.0, "learning_rate": 2e-4}), seed)
        acc = clf.evaluate(test)["accuracy"]
    elif method == "lora":
        m = PETModel.from_pretrained(model_path, templates[0], Verbalizer(words), 128, lora=LoraSettings(enabled=True, r=8, alpha=16))
        m.train_model(train, TrainConfig(**{**cfg.to_dict(), "learning_rate": cfg.learning_rate * 4}), seed, unlabeled=unlabeled)
        acc = m.evaluate(test)["accuracy"]
    elif method in ("pet", "demo", "prompt_tuning", "p_tuning", "prefix_tuning"):
        soft = SoftPromptConfig(kind=method) if method.endswith("tuning") else None
        m = pet_model(model_path, templates[0], words, soft, 256 if method == "demo" else 128)
        if method == "demo":
            embed = lambda exs: sentence_embeddings(m.model, m.tokenizer, exs)  # noqa: E731
            m.demonstrations = DemonstrationSampler(train, m.verbalizer, 1, seed, embed)
        m.train_model(train, cfg, seed, unlabeled=unlabeled)
        acc = m.evaluate(test)["accuracy"]
    elif method == "auto_words":
        probe = pet_model(model_path, templates[0], words)
        cands = search_label_words(probe, train, labels, top_k_per_class=10, num_candidates=3, seed=seed)
        best, best_acc = None, -1.0
        for c in cands:  # LM-BFF re-ranks candidates on the 16-shot dev set
            m = pet_model(model_path, templates[0], c["label_words"])
            m.train_model(train, TrainConfig(**{**cfg.to_dict(), "max_steps": max(10, cfg.max_steps // 3)}), seed)
            dev_acc = m.evaluate(data["dev"])["accuracy"]
            if dev_acc > best_acc:
                best, best_acc = c["label_words"], dev_acc
        m = pet_model(model_path, templates[0], best)
        m.train_model(train, cfg, seed, unlabeled=unlabeled)
        acc = m.evaluate(test)["accuracy"]
    elif method == "auto_template":
        gen = load_generator(generator)
        cands = generate_templates(gen, train, Verbalizer(words), num_candidates=3, beam_width=8, seed=seed)
        m = pet_model(model_path, cands[0]["template"], words)
        m.train_model(train, cfg, seed, unlabeled=unlabeled)
        acc = m.evaluate(test)["accuracy"]
    elif method == "ipet":
        models, logits_u, pre = [], [], []
        for t in templates:
            m = pet_model(model_path, t, words)
            pre.append(m.evaluate(train)["accuracy"])
            m.train_model(train, cfg, seed)
            logits_u.append(m.predict_logits(unlabeled))
            models.append(m)
        gold = [labels.index(e.label) for e in train]
        sets = build_generation_sets(logits_u, pre, gold, generation=1, factor=5, fraction=0.5, seed=seed)
        test_logits = []
        for t, (_, idx, labs) in zip(templates, sets):
            extra = [InputExample(unlabeled[i].text_a, None, labels[lab]) for i, lab in zip(idx.tolist(), labs.tolist())]
            m = pet_model(model_path, t, words)
            m.train_model(train + extra, cfg, seed)
            test_logits.append(m.predict_logits(test))
        merged = merge_logits(test_logits, ensemble_weights(pre))
        acc = float((merged.argmax(-1) == np.array([labels.index(e.label) for e in test])).mean())
    else:
        raise ValueError(f"unknown method {method}")
    return acc, time.time() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(SHARED / "models" / "splade-tiny"))
    ap.add_argument("--tasks", nargs="+", default=["SST-2"], choices=sorted(TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 42])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--test-limit", type=int, default=None, help="evaluate on a fixed random subset of the test set")
    ap.add_argument("--methods", nargs="+", default=["finetune", "pet", "demo", "prompt_tuning", "p_tuning", "prefix_tuning", "lora", "auto_words", "ipet"])
    ap.add_argument("--generator", help="local T5 / causal LM for auto_template")
    ap.add_argument("--out", help="markdown file for the results table")
    args = ap.parse_args(argv)
    methods = list(args.methods) + (["auto_template"] if args.generator and "auto_template" not in args.methods else [])
    cfg = TrainConfig(learning_rate=args.lr, max_steps=args.steps, batch_size=8, progress=False)
    rows = []
    for task in args.tasks:
        for seed in args.seeds:
            data = load_task(task, seed, args.test_limit)
            for method in methods:
                acc, secs = run_method(method, args.model, data, cfg, seed, args.generator)
                rows.append({"task": task, "seed": seed, "method": method, "accuracy": acc, "seconds": secs})
                print(json.dumps(rows[-1]), flush=True)
    table = ["| task | method | mean test acc | per seed | mean seconds |", "|---|---|---|---|---|"]
    for task in args.tasks:
        for method in methods:
            r = [x for x in rows if x["task"] == task and x["method"] == method]
            accs = [x["accuracy"] for x in r]
            table.append(
                f"| {task} | {method} | {np.mean(accs):.3f} | {' / '.join(f'{a:.3f}' for a in accs)} | {np.mean([x['seconds'] for x in r]):.0f} |"
            )
    text = "\n".join(table)
    print(text)
    if args.out:
        header = (
            f"model: {args.model}; seeds {args.seeds}; {args.steps} steps, lr {args.lr}, batch 8; "
            f"test limit {args.test_limit or 'full'}\n\n"
        )
        Path(args.out).write_text(header + text + "\n")


if __name__ == "__main__":
    main()
