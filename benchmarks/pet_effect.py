"""Benchmark: the PET effect. Prompted few-shot training vs supervised fine-tuning, same backbone.

One command measures every method on the LM-BFF K=16 splits, per backbone, task and split seed:

    python benchmarks/pet_effect.py --backbones smollm2-135m-instruct splade-tiny \
        --tasks SST-2 mr trec --seeds 13 21 42 87 100

Rows (test accuracy; every method sees the same 16 labeled examples per class):
  finetune      sequence classifier on the backbone, CE; lr picked on dev from {lr, 4 lr}
  pet           single-pattern PET, mean over the patterns' models
  pet_ensemble  the accuracy-weighted ensemble of those pattern models
  distilled     a student (MiniLM by default) distilled on the ensemble's soft labels of unlabeled text
  ipet          one iPET generation over the unlabeled text, then the new models' ensemble
  auto_words    LM-BFF label-word search (zero-shot on train, top 3 re-ranked on dev) + PET
  auto_template LM-BFF template generation with a causal generator (top 3 re-ranked on dev) + PET
  demo          PET + one demonstration per class (similar ones, by the SBERT encoder)
  prompt_tuning, p_tuning, prefix_tuning   soft prompts (LM tuned too)
  lora          PET with PEFT LoRA adapters only (10x the learning rate)

Each finished row is appended to ``--rows`` (JSON lines) at once and skipped on a rerun, so a long
run can be split over several calls. ``--out``/``--json`` get the table and the machine-readable
summary (mean, std over seeds, seconds, device) of every row in ``--rows``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

from benchmarks.bench_tasks import BACKBONES, TASKS, load_task  # noqa: E402
from benchmarks.bench_methods import METHODS, run_method  # noqa: E402


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def row_key(r: dict) -> tuple:
    """What makes two rows the same measurement (a smoke run with --max-steps is not the real one)."""
    return (r["backbone"], r["task"], r["seed"], r["method"], str(r["test_limit"]),
            r.get("max_steps", BACKBONES[r["backbone"]].max_steps), r.get("student", "all-minilm-l6-v2"),
            r.get("unlabeled_limit", 500))


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["backbone"], r["task"], r["method"]), []).append(r)
    out = []
    for (backbone, task, method), rs in groups.items():
        accs = [r["accuracy"] for r in rs]
        out.append(
            {
                "backbone": backbone, "task": task, "method": method, "n_seeds": len(rs),
                "seeds": sorted(r["seed"] for r in rs), "mean_accuracy": float(np.mean(accs)),
                "std_accuracy": float(np.std(accs)), "mean_seconds": float(np.mean([r["seconds"] for r in rs])),
                "devices": sorted({r["device"] for r in rs}), "test_limit": sorted({str(r["test_limit"]) for r in rs}),
            }
        )
    order = {m: i for i, m in enumerate(METHODS)}
    return sorted(out, key=lambda s: (s["backbone"], s["task"], order.get(s["method"], 99)))


def table(summary: list[dict]) -> str:
    lines = [
        "| backbone | task | method | mean test acc | std | seeds | mean seconds | device | test rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['backbone']} | {s['task']} | {s['method']} | {s['mean_accuracy']:.3f} | {s['std_accuracy']:.3f} "
            f"| {' '.join(map(str, s['seeds']))} | {s['mean_seconds']:.0f} | {'; '.join(s['devices'])} "
            f"| {'; '.join(s['test_limit'])} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=["smollm2-135m-instruct"], choices=sorted(BACKBONES))
    ap.add_argument("--tasks", nargs="+", default=["SST-2", "mr", "trec"], choices=sorted(TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 21, 42, 87, 100])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--test-limit", type=int, help="evaluate on a fixed random subset of each test set (CPU runs)")
    ap.add_argument("--unlabeled", type=int, default=1000, help="unlabeled texts (task's training pool) for distilled/ipet")
    ap.add_argument("--max-steps", type=int, help="override every backbone's step count (smoke runs only)")
    ap.add_argument("--student", default="all-minilm-l6-v2", help="distillation student: a model name, a folder, or 'teacher'")
    ap.add_argument("--rows", default=str(ROOT / "benchmarks" / "results_rows.jsonl"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args(argv)
    if args.max_steps:
        for name, b in BACKBONES.items():
            BACKBONES[name] = dataclasses.replace(b, max_steps=args.max_steps)
    torch.set_num_threads(int(os.environ.get("PET_TORCH_THREADS", os.cpu_count() or 1)))
    rows_path = Path(args.rows)
    rows = [json.loads(x) for x in rows_path.read_text().splitlines() if x.strip()] if rows_path.exists() else []
    done = {row_key(r) for r in rows}
    device = device_name()
    for backbone in args.backbones:
        for task in args.tasks:
            for seed in args.seeds:
                settings = {"test_limit": args.test_limit, "max_steps": BACKBONES[backbone].max_steps,
                            "student": args.student, "unlabeled_limit": args.unlabeled}
                todo = [m for m in args.methods
                        if row_key({"backbone": backbone, "task": task, "seed": seed, "method": m, **settings}) not in done]
                if not todo:
                    continue
                data = load_task(task, seed, args.test_limit, args.unlabeled, BACKBONES[backbone].kind)
                shared: dict = {}  # pattern models' logits, reused by pet / pet_ensemble / distilled / ipet
                for method in todo:
                    t0 = time.time()
                    acc, extra = run_method(method, backbone, data, seed, shared, args.student)
                    row = {"backbone": backbone, "task": task, "seed": seed, "method": method, "accuracy": acc,
                           "seconds": round(time.time() - t0, 1), "device": device, **settings,
                           "n_test": len(data.test), "n_unlabeled": len(data.unlabeled), **extra}
                    rows.append(row)
                    with rows_path.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
    summary = summarize(rows)
    Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    text = table(summary)
    print(text)
    settings = "\n".join(
        f"- {name}: {b.describe()}" for name, b in BACKBONES.items() if any(r["backbone"] == name for r in rows)
    )
    write_table(Path(args.out), f"Settings per backbone:\n{settings}\n\n{text}")


def write_table(path: Path, block: str) -> None:
    """Put the generated block between the markers of ``path``; the hand-written reading around it stays."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    old = path.read_text() if path.exists() else f"# The PET effect: results\n\n{start}\n{end}\n"
    if start not in old or end not in old:
        old = old.rstrip() + f"\n\n{start}\n{end}\n"
    head, rest = old.split(start, 1)
    path.write_text(f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")


if __name__ == "__main__":
    main()
