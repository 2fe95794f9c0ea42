"""TREC as a user would bring it: the original files' coarse classes (ABBR, DESC, ENTY, HUM, LOC, NUM) as
labels, 16 labeled questions per class and a dev set of 16 per class drawn from TREC's training set, 1,000
more of its questions as unlabeled text, and its 500 test questions. `pet init` + `pet run` with no prompt
written, and SetFit (1.2.0 defaults, same MiniLM body) on the same 96 examples.

Source: ../shared/data/trec_fine/{train,test}.txt (`COARSE:fine question` per line). The training lines
are shuffled with the sample seed; train takes the first 16 of each class, dev the next 16, unlabeled
the next 1,000 other lines. Rows go to benchmarks/trec_coarse_results.json as each unit finishes
(resumable).

    nice -n 5 .venv/bin/python benchmarks/trec_coarse_task.py --sample-seeds 0
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from tasks_bench import SHARED, WORK, _cli, _pet_rows, _stage_seconds, run_samples, unit_setfit  # noqa: E402

OUT = ROOT / "benchmarks" / "trec_coarse_results.json"
SOURCE = SHARED / "data" / "trec_fine"
PER_CLASS, N_UNLABELED = 16, 1000
UNITS = ["pet", "setfit"]


def _lines(name: str) -> list[tuple[str, str]]:
    """(coarse label, question) per line of a TREC file."""
    rows = []
    for line in (SOURCE / name).read_text(encoding="utf-8").splitlines():
        label, question = line.split(" ", 1)
        rows.append((label.split(":", 1)[0], question.strip()))
    return rows


def write_sample(out: Path, rows: list[tuple[str, str]], test: list[tuple[str, str]], seed: int, per_class: int,
                 dev_per_class: int) -> dict:
    """(label, question) ``rows`` shuffled with ``seed``: the first ``per_class`` of each label as train, the
    next ``dev_per_class`` as dev, the next N_UNLABELED others as unlabeled; ``test`` as it is; CSVs in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    taken: dict[str, int] = {}
    parts: dict[str, list] = {"train": [], "dev": [], "unlabeled": []}
    for label, q in rows:
        n = taken[label] = taken.get(label, 0) + 1
        part = "train" if n <= per_class else "dev" if n <= per_class + dev_per_class else "unlabeled"
        if part != "unlabeled" or len(parts["unlabeled"]) < N_UNLABELED:
            parts[part].append((q, label))
    parts["test"] = [(q, label) for label, q in test]
    for split, part in parts.items():
        with (out / f"{split}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["question", "label"] if split != "unlabeled" else ["question"])
            w.writerows([row if split != "unlabeled" else row[:1] for row in part])
    return {"dir": out}


def build(seed: int) -> dict:
    return write_sample(WORK / f"trec-coarse-{seed}", _lines("train.txt"), _lines("test.txt"), seed, PER_CLASS, PER_CLASS)


def unit_pet(f: dict, seed: int) -> list[dict]:
    d = f["dir"]
    cfg = d / "auto.yaml"
    t0 = time.time()
    _cli("init", str(d / "train.csv"), "--unlabeled", str(d / "unlabeled.csv"), "--dev", str(d / "dev.csv"),
         "--test", str(d / "test.csv"), "--name", f"trec-coarse-{seed}", "-o", str(cfg), "--force")
    summary = _cli("run", str(cfg), "--json", "-q")
    return _pet_rows(summary, time.time() - t0, {"config": "pet init, TREC's coarse class names", "run_s": summary["seconds"],
                                                 "stage_s": _stage_seconds(cfg, summary["mlflow_run_id"])})


def run_unit(f: dict, unit: str, seed: int) -> list[dict]:
    if unit == "pet":
        return unit_pet(f, seed)
    files = dict(train=f["dir"] / "train.csv", dev=f["dir"] / "dev.csv", test=f["dir"] / "test.csv", dir=f["dir"],
                 text="question", label="label", header=True)
    return unit_setfit("trec-coarse", seed, files)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--units", nargs="+", default=UNITS, choices=UNITS)
    args = ap.parse_args()
    res = json.loads(OUT.read_text()) if OUT.exists() else {
        "machine": "2-core CPU VM (AMD EPYC), no GPU",
        "task": "TREC coarse classes as named in its files, 16 + 16 dev per class, 1,000 unlabeled, 500 test",
        "rows": []}
    run_samples(OUT, res, args.sample_seeds, args.units, build, run_unit, "trec coarse")


if __name__ == "__main__":
    main()
