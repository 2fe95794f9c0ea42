"""LoRA pattern models with bf16 labeling, end to end: the same `pet run` with full fine-tuning (today's default)
and with `pet.lora.enabled=true` (every Linear, lr 1e-3 by the rule, `pet.label_precision: auto`), one after the
other on one machine, each in a folder of its own so nothing is reused.

Units:
* ``readme``: the README job, `pet run configs/sst2.yaml` (SST-2 split 16-42, dev and test; the config sets its
  learning rate, so the LoRA run also sets `pet.train.learning_rate=0.001`, the rule's);
* ``TASK-SEED``: the user's path, `pet init` (16-shot train, dev, 1,000 unlabeled texts, no test) + `pet run`.

Each row: wall seconds, the stages' seconds (MLflow), dev/test accuracies and the precision each pattern model
labeled in (with its bf16 agreement on the check's 128 texts). Rows go to
benchmarks/lora_userpath_results.json as each run finishes; a rerun skips the rows there for this machine.

    .venv/bin/python benchmarks/lora_userpath.py --units readme trec-13
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
from tasks_bench import ROOT, WORK, _cli, _commit, _files, pet_init, precisions, save_results, stage_seconds  # noqa: E402

OUT = ROOT / "benchmarks" / "lora_userpath_results.json"
VARIANTS = {"full": (), "lora": ("--set", "pet.lora.enabled=true")}


def run(unit: str, variant: str) -> dict:
    t0, commit = time.time(), _commit()
    extra = list(VARIANTS[variant])
    if unit == "readme":
        folder = WORK / f"readme-{variant}"
        cfg = ROOT / "configs" / "sst2.yaml"
        if variant == "lora":
            extra += ["--set", "pet.train.learning_rate=0.001"]
        extra += ["--set", f"work_dir={folder}"]
    else:
        task, seed = unit.rsplit("-", 1)
        f = _files(task, int(seed))
        folder = f["dir"] / f"userpath-{variant}"
        folder.mkdir(exist_ok=True)
        cfg = folder / "auto.yaml"
        pet_init(f, cfg, f"{unit.lower()}-userpath-{variant}", test=False)
    summary = _cli("run", str(cfg), "--json", "-q", *extra)
    if unit == "readme":  # its work_dir is overridden, and the store sits in it
        uri = f"sqlite:///{folder / 'mlflow.db'}"
    else:
        from pet_config.loading import load_config

        uri = load_config(cfg).tracking_uri()
    ens, clf = summary["ensemble_metrics"], summary["classifier_metrics"]
    return {"unit": unit, "variant": variant, "wall_s": round(time.time() - t0, 1), "run_s": summary["seconds"],
            **{f"ensemble_{k}": ens.get(k) for k in ("dev_accuracy", "test_accuracy")},
            **{f"classifier_{k}": clf.get(k) for k in ("dev_accuracy", "test_accuracy")},
            "stage_s": stage_seconds(uri, summary["mlflow_run_id"]), "precision": precisions(uri, summary["mlflow_run_id"]),
            "commit": commit, "loadavg5_start": os.getloadavg()[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", nargs="+", default=["readme"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = ap.parse_args()
    here = machine()
    res = json.loads(OUT.read_text()) if OUT.exists() else {"rows": []}
    for unit in args.units:
        for variant in args.variants:
            if any((r["unit"], r["variant"], r["machine"]) == (unit, variant, here) for r in res["rows"]):
                continue
            row = dict(run(unit, variant), machine=here)
            res["rows"].append(row)
            print(json.dumps(row), flush=True)
            save_results(res, OUT)


if __name__ == "__main__":
    main()
