"""TREC's 50 fine classes as its files name them (`ENTY:animal`, `HUM:ind`, `NUM:date`): many labels, few
examples each. `pet init` + `pet run` with no prompt written, the same at an earlier commit (`--before`,
run from a git worktree: what changed is measured in one run on one machine), and SetFit (1.2.0 defaults,
same MiniLM body) on the same examples.

Source: ../shared/data/trec_fine/{train,test}.txt (`COARSE:fine question` per line). The training lines
are shuffled with the sample seed; train takes the first 8 of each class (fewer where TREC has fewer),
dev the next 4, unlabeled the next 1,000 other lines; test is TREC's 500 questions. Rows go to
benchmarks/trec_fine_results.json as each unit finishes (resumable).

    nice -n 5 .venv/bin/python benchmarks/trec_fine_task.py --before COMMIT
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from tasks_bench import SHARED, WORK, _cli, _commit, _pet_rows, run_samples, unit_setfit  # noqa: E402
from trec_coarse_task import write_sample  # noqa: E402

OUT = ROOT / "benchmarks" / "trec_fine_results.json"
SOURCE = SHARED / "data" / "trec_fine"
PER_CLASS, DEV_PER_CLASS = 8, 4  # 1,000 unlabeled: trec_coarse_task.N_UNLABELED
UNITS = ["pet", "pet-before", "setfit"]


def _lines(name: str) -> list[tuple[str, str]]:
    """(fine label, question) per line of a TREC file."""
    return [(label, q.strip()) for label, q in (line.split(" ", 1) for line in
                                                (SOURCE / name).read_text(encoding="utf-8").splitlines())]


def build(seed: int) -> dict:
    return write_sample(WORK / f"trec-fine-{seed}", _lines("train.txt"), _lines("test.txt"), seed, PER_CLASS,
                        DEV_PER_CLASS)


def unit_pet(f: dict, seed: int, code: Path, tag: str) -> list[dict]:
    """`pet init` + `pet run` with the code at ``code`` (this checkout, or a worktree of an earlier commit)."""
    d = f["dir"] / tag
    d.mkdir(exist_ok=True)
    cfg = d / "auto.yaml"
    t0 = time.time()
    _cli("init", str(f["dir"] / "train.csv"), "--unlabeled", str(f["dir"] / "unlabeled.csv"), "--dev",
         str(f["dir"] / "dev.csv"), "--test", str(f["dir"] / "test.csv"), "--name", f"trec-fine-{seed}-{tag}",
         "-o", str(cfg), "--force", code=code)
    summary = _cli("run", str(cfg), "--json", "-q", code=code)
    return _pet_rows(summary, time.time() - t0, {"config": "pet init, TREC's 50 fine class names", "commit": _commit(code),
                                                 "run_s": summary["seconds"]})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--units", nargs="+", default=UNITS, choices=UNITS)
    ap.add_argument("--before", default="HEAD~1", help="the earlier commit the pet-before unit runs")
    args = ap.parse_args()
    res = json.loads(OUT.read_text()) if OUT.exists() else {
        "machine": "2-core CPU VM (AMD EPYC), no GPU",
        "task": f"TREC's 50 fine classes, {PER_CLASS} + {DEV_PER_CLASS} dev per class, 1,000 unlabeled, 500 test",
        "rows": []}
    worktree = WORK / "before-worktree"

    def run_unit(f: dict, unit: str, seed: int) -> list[dict]:
        if unit == "pet":
            return unit_pet(f, seed, ROOT, "now")
        if unit == "pet-before":
            if not worktree.exists():
                subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=ROOT, check=True)
            rows = unit_pet(f, seed, worktree, "before")
            return [dict(r, method=r["method"] + "-before") for r in rows]
        files = dict(train=f["dir"] / "train.csv", dev=f["dir"] / "dev.csv", test=f["dir"] / "test.csv", dir=f["dir"],
                     text="question", label="label", header=True)
        return unit_setfit("trec-fine", seed, files)

    try:
        run_samples(OUT, res, args.sample_seeds, args.units, build, run_unit, "trec fine")
    finally:
        if worktree.exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT)


if __name__ == "__main__":
    main()
