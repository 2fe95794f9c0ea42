"""The 12-minute question for the bigger teacher: the time a user waits for `pet init --backbone gemma-3-270m` +
`pet run` (16-shot train, dev, 1,000 unlabeled texts, no test), beside the same path with the default SmolLM2, in
one run on one machine (tasks_bench.py's `userpath` unit, with the backbone flag). Each config has a folder of its
own, so nothing is reused. Rows (dev accuracy and wall seconds only) go to benchmarks/gemma_userpath_results.json
as each run finishes; a rerun skips the (task, seed, backbone) rows already there for this machine.

    .venv/bin/pet models install gemma-3-270m
    .venv/bin/python benchmarks/gemma_userpath.py --tasks trec --seeds 13 --backbones gemma-3-270m smollm2-135m-instruct
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import machine  # noqa: E402
from tasks_bench import ROOT, _cli, _commit, _files, pet_init, save_results  # noqa: E402

OUT = ROOT / "benchmarks" / "gemma_userpath_results.json"


def run(task: str, seed: int, backbone: str) -> dict:
    f = _files(task, seed)
    folder = f["dir"] / f"userpath-{backbone}"
    folder.mkdir(exist_ok=True)
    cfg = folder / "auto.yaml"
    t0, commit = time.time(), _commit()
    pet_init(f, cfg, f"{task.lower()}-{seed}-userpath-{backbone.split('-')[0]}", test=False, extra=("--backbone", backbone))
    summary = _cli("run", str(cfg), "--json", "-q")
    return {"task": task, "seed": seed, "backbone": backbone, "wall_s": round(time.time() - t0, 1),
            "run_s": summary["seconds"], "ensemble_dev_accuracy": summary["ensemble_metrics"].get("dev_accuracy"),
            "classifier_dev_accuracy": summary["classifier_metrics"].get("dev_accuracy"), "commit": commit,
            "loadavg5_start": os.getloadavg()[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["trec"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[13])
    ap.add_argument("--backbones", nargs="+", default=["gemma-3-270m", "smollm2-135m-instruct"])
    args = ap.parse_args()
    here = machine()
    res = json.loads(OUT.read_text()) if OUT.exists() else {"rows": []}
    for task in args.tasks:
        for seed in args.seeds:
            for backbone in args.backbones:
                if any((r["task"], r["seed"], r["backbone"], r["machine"]) == (task, seed, backbone, here) for r in res["rows"]):
                    continue
                row = dict(run(task, seed, backbone), machine=here)
                res["rows"].append(row)
                print(json.dumps(row), flush=True)
                save_results(res, OUT)


if __name__ == "__main__":
    main()
