"""A task outside ../shared, run the way a user would: AG News topics with 10 labeled examples (PET's
|T| = 10 setting), 1,000 unlabeled texts, no dev set, 1,000 test texts; `pet init` + `pet run` with no
prompt written, the labels given as names (World, Sports, Business, Sci/Tech) or as codes (1-4), and
SetFit (1.2.0 defaults, same MiniLM body) on the same 10 examples.

AG News is not in ../shared and is not committed (its terms are non-commercial). Its test file is in a
public snapshot: `fetch github:suuuch/TransformerClassification`, then
    git --git-dir=MIRROR show HEAD:data/ag_news_csv/test.csv > benchmarks/tasks_work/ag_test.csv
    nice -n 5 .venv/bin/python benchmarks/outside_task.py --ag-csv benchmarks/tasks_work/ag_test.csv --sample-seeds 0

The 7,600 rows are shuffled with the sample seed; the labeled set takes the first rows of each class
(3 World, 3 Sports, 2 Business, 2 Sci/Tech), the unlabeled pool the next 1,000 other rows, test the
1,000 after. Rows go to benchmarks/outside_task_results.json as each unit finishes (resumable).
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
from tasks_bench import WORK, _cli, _pet_rows, _stage_seconds, run_samples, unit_setfit  # noqa: E402

OUT = ROOT / "benchmarks" / "outside_task_results.json"
NAMES = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
PER_CLASS = {"1": 3, "2": 3, "3": 2, "4": 2}
UNITS = ["names", "codes", "setfit"]


def _text(row: list[str]) -> str:
    text = f"{row[1].strip()} {row[2].strip()}".replace("\\", " ")
    return text.replace("#36;", "$").replace("#39;", "'").replace("quot;", '"').strip()


def build(ag_csv: Path, seed: int) -> dict:
    """train/test CSVs with label names and with codes, and the unlabeled CSV, for one sample seed."""
    out = WORK / f"agnews-{seed}"
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.reader(ag_csv.open(newline="")))
    random.Random(seed).shuffle(rows)
    want, labeled, rest = dict(PER_CLASS), [], []
    for row in rows:
        if want.get(row[0], 0) > 0:
            labeled.append(row)
            want[row[0]] -= 1
        else:
            rest.append(row)
    parts = {"train": labeled, "test": rest[1000:2000]}
    for kind, name_of in [("names", NAMES.get), ("codes", str)]:
        for split, part in parts.items():
            with (out / f"{split}_{kind}.csv").open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["text", "label"])
                w.writerows([_text(r), name_of(r[0])] for r in part)
    with (out / "unlabeled.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([_text(r)] for r in rest[:1000])
    return {"dir": out}


def unit_pet(f: dict, kind: str, seed: int) -> list[dict]:
    d = f["dir"]
    cfg = d / f"{kind}.yaml"
    t0 = time.time()
    _cli("init", str(d / f"train_{kind}.csv"), "--unlabeled", str(d / "unlabeled.csv"), "--test",
         str(d / f"test_{kind}.csv"), "--name", f"agnews-{seed}-{kind}", "-o", str(cfg), "--force")
    summary = _cli("run", str(cfg), "--json", "-q")
    wall = time.time() - t0
    return [dict(r, method=f"{r['method']} (labels as {kind})") for r in _pet_rows(summary, wall, {
        "config": f"pet init, labels as {kind}, no dev", "run_s": summary["seconds"],
        "stage_s": _stage_seconds(cfg, summary["mlflow_run_id"])})]


def unit_setfit_ag(f: dict) -> list[dict]:
    d = f["dir"]
    files = dict(train=d / "train_names.csv", dev=d / "train_names.csv", test=d / "test_names.csv", dir=d,
                 text="text", label="label", header=True)
    rows = unit_setfit("agnews", 0, files)
    return [dict(r, train_accuracy=r.pop("dev_accuracy")) for r in rows]  # no dev set: "dev" was train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ag-csv", type=Path, required=True, help="AG News test.csv (class,title,description)")
    ap.add_argument("--sample-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--units", nargs="+", default=UNITS, choices=UNITS)
    args = ap.parse_args()
    res = json.loads(OUT.read_text()) if OUT.exists() else {
        "machine": "2-core CPU VM (AMD EPYC), no GPU", "task": "AG News, 10 labeled, 1,000 unlabeled, 1,000 test",
        "rows": []}
    run_samples(OUT, res, args.sample_seeds, args.units, lambda seed: build(args.ag_csv, seed),
                lambda f, unit, seed: unit_setfit_ag(f) if unit == "setfit" else unit_pet(f, unit, seed), "agnews")


if __name__ == "__main__":
    main()
