"""Can LoRA pattern models label in bf16 without the accuracy full fine-tuning loses there?

Session 27 found that bf16 labeling is 2.27x faster on an AMX CPU but costs the README job's ensemble
4.5 test points: full fine-tuning moves the weights by less than bf16's rounding step, so casting the
fine-tuned matrices to bf16 rounds most of the training away. A LoRA adapter keeps the update apart
from the pretrained matrix, so under bf16 autocast the base is rounded (as any bf16 inference of the
pretrained model is) but the update is computed on its own.

The README job (configs/sst2.yaml: SST-2 split 16-42, its 2 patterns, seed 1, 40 steps of batch 8)
is trained as units, one after the other in this process:

* ``full``: today's full fine-tuning, lr 3e-5 (the README's);
* ``lora-qv`` / ``lora-all``: PEFT LoRA r=8, alpha=16 on PEFT's default modules (q_proj, v_proj) or on
  every Linear of the transformer, at lr 1e-4, 3e-4 and 1e-3 (to be chosen on dev, 32 texts).

Every unit's 2 models score dev (fp32) and test (872 texts) in fp32 and under bf16 autocast, with the
adapters unmerged (``bf16``) and, for LoRA, merged into the weights first (``bf16-merged``, what a
saved PET model is today). One unit per method also times labeling the README job's 1,000 unlabeled
texts: fp32 on the merged weights against bf16 with the adapters unmerged. Ensembles are the uniform
mean of the 2 models' logits. Units append to a JSON Lines file, so a rerun resumes.

    nice -n 10 .venv/bin/python benchmarks/teacher_lora_bf16.py          # ~30 min on 2 cores
    ... --split 16-13 --methods full,lora-all --no-timing                # another split, accuracy only
    .venv/bin/python benchmarks/teacher_lora_bf16.py --report            # dev choice and the table
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hostinfo import machine
from teacher_labeling import cpu_bf16

ROOT = Path(__file__).resolve().parents[1]
KSHOT = ROOT.parent / "shared" / "data" / "lmbff_kshot" / "SST-2"
SPLIT = KSHOT / "16-42"  # --split changes it
ROWS = Path(__file__).with_name("teacher_lora_bf16_rows.jsonl")
OUT = Path(__file__).with_name("teacher_lora_bf16_results.json")
PATTERNS = ["{text_a} It was {mask}", "{text_a} All in all, it was {mask}"]
WORDS = {"0": ["terrible"], "1": ["great"]}
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
UNITS = [("full", None, 3e-5)] + [(m, t, lr) for m, t in [("lora-qv", []), ("lora-all", ALL_LINEAR)]
                                   for lr in (1e-4, 3e-4, 1e-3)]
TIMED = {"full": 3e-5, "lora-qv": 1e-4, "lora-all": 1e-4}  # timing does not depend on the learning rate


def read(split: str):
    import csv

    from prompt_models.examples import InputExample

    with open(SPLIT / f"{split}.tsv", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [InputExample(text_a=r[0], label=r[1]) for r in rows]


def merged(pet):
    """The same PET model over weights with the adapters merged in (what PETModel.save writes)."""
    from prompt_models.adapters import merged_copy
    from prompt_models.pet import PETModel

    if not pet._peft:
        return pet
    return PETModel(merged_copy(pet._peft[0]), pet.tokenizer, pet.pattern, pet.verbalizer, pet.max_length).eval()


def run_unit(method: str, targets, lr: float, data: dict, unlabeled, timed: bool = True) -> dict:
    from prompt_models.adapters import LoraSettings
    from prompt_models.pet import PETModel
    from prompt_models.training import TrainConfig
    from pet_zoo.registry import default_models_dir

    lora = LoraSettings(enabled=True, r=8, alpha=16, target_modules=targets) if targets is not None else None
    row = {"method": method, "lr": lr, "target_modules": targets or ("peft default" if lora else "all weights"),
           "models": [], "timing": None}
    timing = {"fp32_s": 0.0, "bf16_s": 0.0} if timed and TIMED[method] == lr else None
    for template in PATTERNS:
        pet = PETModel.from_pretrained(str(default_models_dir() / "smollm2-135m-instruct"), template, WORDS, 64, lora=lora)
        t0 = time.perf_counter()
        pet.train_model(data["train"], TrainConfig(learning_rate=lr, max_steps=40, batch_size=8, mlm_alpha=0.0,
                                                   progress=False), seed=1)
        model = {"template": template, "train_s": time.perf_counter() - t0,
                 "trainable": sum(p.numel() for p in pet.parameters() if p.requires_grad),
                 "dev_fp32": pet.predict_logits(data["dev"]).tolist(),
                 "test_fp32": pet.predict_logits(data["test"]).tolist()}
        with cpu_bf16():
            model["test_bf16"] = pet.predict_logits(data["test"]).tolist()
        flat = merged(pet)
        if flat is not pet:
            with cpu_bf16():
                model["test_bf16_merged"] = flat.predict_logits(data["test"]).tolist()
        if timing is not None:  # the product's shards of 500, as in teacher_labeling.py
            t0 = time.perf_counter()
            for i in range(0, len(unlabeled), 500):
                flat.predict_logits(unlabeled[i: i + 500])
            timing["fp32_s"] += time.perf_counter() - t0
            with cpu_bf16():
                t0 = time.perf_counter()
                for i in range(0, len(unlabeled), 500):
                    pet.predict_logits(unlabeled[i: i + 500])
                timing["bf16_s"] += time.perf_counter() - t0
        row["models"].append(model)
        print(json.dumps({k: v for k, v in model.items() if not k.startswith(("dev", "test"))} | {"method": method, "lr": lr}), flush=True)
    row["timing"] = timing
    return row


def accuracy(models: list[dict], key: str, gold: np.ndarray) -> float:
    return float((np.mean([np.asarray(m[key]) for m in models], axis=0).argmax(-1) == gold).mean())


def report() -> dict:
    rows = [json.loads(line) for line in ROWS.read_text().splitlines()]
    gold = {s: np.array([int(e.label) for e in read(s)]) for s in ("dev", "test")}
    table = []
    for r in rows:
        entry = {"method": r["method"], "lr": r["lr"], "target_modules": r["target_modules"],
                 "trainable_params": r["models"][0]["trainable"],
                 "train_s": round(sum(m["train_s"] for m in r["models"]), 1),
                 "dev_fp32": accuracy(r["models"], "dev_fp32", gold["dev"]),
                 "test_fp32": accuracy(r["models"], "test_fp32", gold["test"]),
                 "test_bf16": accuracy(r["models"], "test_bf16", gold["test"])}
        if "test_bf16_merged" in r["models"][0]:
            entry["test_bf16_merged"] = accuracy(r["models"], "test_bf16_merged", gold["test"])
        if r["timing"]:
            entry |= {k: round(v, 1) for k, v in r["timing"].items()}
            entry["bf16_speedup"] = round(r["timing"]["fp32_s"] / r["timing"]["bf16_s"], 2)
        table.append(entry)
    chosen = {}
    for method in dict.fromkeys(e["method"] for e in table):  # highest dev accuracy, the smaller lr on a tie
        chosen[method] = max((e for e in table if e["method"] == method), key=lambda e: (e["dev_fp32"], -e["lr"]))["lr"]
    return {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "split": f"SST-2 {SPLIT.name}",
            "n_dev": len(gold["dev"]), "n_test": len(gold["test"]), "n_unlabeled_timed": 1000,
            "chosen_on_dev": chosen, "rows": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", action="store_true", help="only summarise the rows already measured")
    ap.add_argument("--split", default="16-42", help="an SST-2 split; other than 16-42, rows and results get its name")
    ap.add_argument("--methods", default="full,lora-qv,lora-all", help="which units to run")
    ap.add_argument("--no-timing", action="store_true", help="accuracy only (the labeling time is measured once)")
    args = ap.parse_args()
    global SPLIT, ROWS, OUT
    if args.split != "16-42":
        SPLIT = KSHOT / args.split
        ROWS, OUT = (p.with_name(p.name.replace("bf16_", f"bf16_{args.split}_")) for p in (ROWS, OUT))
    if not args.report:
        from teacher_labeling import texts

        data = {s: read(s) for s in ("train", "dev", "test")}
        unlabeled = texts(1000)
        done = {(r["method"], r["lr"]) for r in map(json.loads, ROWS.read_text().splitlines())} if ROWS.exists() else set()
        for method, targets, lr in UNITS:
            if (method, lr) in done or method not in args.methods.split(","):
                continue
            row = run_unit(method, targets, lr, data, unlabeled, timed=not args.no_timing)
            with open(ROWS, "a", encoding="utf-8") as fh:  # one whole line per unit: a killed run loses one unit
                fh.write(json.dumps(row) + "\n")
    result = report()
    tmp = OUT.with_name(f".{OUT.name}.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(OUT)
    print(json.dumps(result["chosen_on_dev"]))
    for e in result["rows"]:
        print(json.dumps(e))


if __name__ == "__main__":
    main()
