"""A bigger teacher on the user's path: the `pet` unit of tasks_bench.py with `model.path: gemma-3-270m`.

The same files, the same `pet init` config (automatic prompts, the rule's settings, which scale the learning
rate with the backbone's size) and the same student; only the backbone differs. Its own work_dir beside the
unit's (`benchmarks/tasks_work/<task>-<seed>/gemma_artifacts`), so nothing of the SmolLM2 unit is reused.
Rows go to benchmarks/gemma_teacher_results.json as each (task, seed) finishes; a rerun skips finished ones.
Compare with the SmolLM2 `pet` rows of tasks_results.json on dev (select on dev; test is reported only).

    .venv/bin/pet models install gemma-3-270m
    .venv/bin/python benchmarks/gemma_teacher.py --tasks trec --seeds 13 42 100
    .venv/bin/python benchmarks/gemma_teacher.py --report   # Gemma beside SmolLM2 and SetFit, dev / test
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
from tasks_bench import ROOT, _cli, _commit, _files, _pet_rows, _stage_seconds, pet_init  # noqa: E402

OUT = ROOT / "benchmarks" / "gemma_teacher_results.json"
BACKBONE = "gemma-3-270m"


def run(task: str, seed: int) -> list[dict]:
    f = _files(task, seed)
    cfg = f["dir"] / "gemma.yaml"
    t0, commit = time.time(), _commit()  # the code the run starts on (a commit landing mid-run is not in it)
    pet_init(f, cfg, f"{task.lower()}-{seed}-gemma", extra=("--backbone", BACKBONE))
    # written into the config (not --set), so that the stage timings are read from this run's own MLflow store
    text = cfg.read_text()
    if f"path: {BACKBONE}" not in text or "work_dir: pet_artifacts" not in text:  # else a run lands in the wrong place
        raise SystemExit(f"{cfg}: `pet init` no longer writes the backbone or work_dir lines; update gemma_teacher.py")
    cfg.write_text(text.replace("work_dir: pet_artifacts", "work_dir: gemma_artifacts"))
    summary = _cli("run", str(cfg), "--json", "-q")
    wall = time.time() - t0
    extra = {"backbone": BACKBONE, "run_s": summary["seconds"], "commit": commit, "machine": machine(),
             "pattern_models": [{"template": m["template"], **m["metrics"]} for m in summary["pattern_models"]],
             "stage_s": _stage_seconds(cfg, summary["mlflow_run_id"])}
    return [dict(r, method=r["method"].replace("pet-", "gemma-"), task=task, seed=seed)
            for r in _pet_rows(summary, wall, extra)]


def report() -> None:
    """Per (task, seed) and per task's mean: Gemma's ensemble and student beside the shipped SmolLM2 `pet` rows and
    SetFit (tasks_results.json), dev / test; only units where all three ran."""
    ours = json.loads(OUT.read_text())["rows"]
    rows = ours + json.loads((ROOT / "benchmarks" / "tasks_results.json").read_text())["rows"]
    acc = {(r["task"], r["seed"], r["method"]): (r["dev_accuracy"], r["test_accuracy"]) for r in rows}
    methods = ["gemma-ensemble", "gemma-student", "pet-ensemble", "pet-student", "setfit"]
    print("| task | seed | " + " | ".join(f"{m} dev / test" for m in methods) + " | student - SetFit dev / test |")
    print("|---" * (len(methods) + 3) + "|")
    for task in dict.fromkeys(r["task"] for r in ours):
        seeds = sorted(s for (t, s, m) in acc if t == task and m == "gemma-student" and all((t, s, x) in acc for x in methods))
        for seed in [*seeds, "mean"]:
            vals = {m: [sum(acc[task, s, m][i] for s in seeds) / len(seeds) for i in (0, 1)] if seed == "mean"
                    else acc[task, seed, m] for m in methods}
            gap = [100 * (vals["gemma-student"][i] - vals["setfit"][i]) for i in (0, 1)]
            print(f"| {task} | {seed} | " + " | ".join(f"{v[0]:.3f} / {v[1]:.3f}" for v in vals.values())
                  + f" | {gap[0]:+.1f} / {gap[1]:+.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["trec"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 42, 100])
    ap.add_argument("--report", action="store_true", help="print the comparison table and stop")
    args = ap.parse_args()
    if args.report:
        return report()
    res = json.loads(OUT.read_text()) if OUT.exists() else {"rows": []}
    for task in args.tasks:
        for seed in args.seeds:
            if any(r["task"] == task and r["seed"] == seed for r in res["rows"]):
                continue
            print(f"{task} {seed} ...", flush=True)
            rows = run(task, seed)
            res["rows"] += rows
            tmp = OUT.with_name(f".{OUT.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(res, indent=1) + "\n")
            tmp.replace(OUT)
            print("  " + ", ".join(f"{r['method']} dev {r['dev_accuracy']:.3f} test {r['test_accuracy']:.3f}"
                                   for r in rows) + f" ({rows[0]['wall_s']} s)", flush=True)


if __name__ == "__main__":
    main()
