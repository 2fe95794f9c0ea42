"""Does bf16 labeling cost the teacher accuracy, or only move near-ties? The README job's trained pattern models
label the 872 SST-2 test sentences (LM-BFF split 16-42) in fp32 and under CPU bf16 autocast
(``teacher_labeling.label``, the same path as the labeling benchmark), and each is scored against the gold labels.

    .venv/bin/python benchmarks/teacher_bf16_accuracy.py --models WORK/pattern_models/*/model
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from hostinfo import machine
from teacher_labeling import label

TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "lmbff_kshot" / "SST-2" / "16-42" / "test.tsv"
OUT = Path(__file__).with_name("teacher_bf16_accuracy_results.json")


def main() -> None:
    from prompt_models.examples import InputExample

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="trained pattern model folders (PETModel.save)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    with open(TEST, encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    examples = [InputExample(text_a=r[0], label=r[1]) for r in rows]
    gold = np.array([int(r[1]) for r in rows])
    probs, res = {}, {"machine": machine(), "test": str(TEST.relative_to(TEST.parents[4])), "n": len(rows), "rows": []}
    for variant in ["fp32", "bf16"]:
        t0 = time.perf_counter()
        probs[variant], per_model, _ = label(sorted(args.models), examples, variant, 64)
        res["rows"].append({"variant": variant, "seconds": time.perf_counter() - t0,
                            "ensemble_accuracy": float((probs[variant].argmax(-1) == gold).mean()),
                            "model_accuracies": [float((lg.argmax(-1) == gold).mean()) for lg in per_model]})
        print(json.dumps(res["rows"][-1]), flush=True)
    a, b = probs["fp32"], probs["bf16"]
    flipped = a.argmax(-1) != b.argmax(-1)
    res["agreement"] = {"argmax_agree": float(1 - flipped.mean()), "max_abs_prob_diff": float(np.abs(a - b).max()),
                        "flipped": int(flipped.sum()),
                        "fp32_right_on_flipped": float((a.argmax(-1)[flipped] == gold[flipped]).mean()) if flipped.any() else None,
                        "fp32_median_max_prob_on_flipped": float(np.median(a.max(-1)[flipped])) if flipped.any() else None}
    print(json.dumps(res["agreement"]))
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
