"""Design check: should the student also see the labeled examples, with their gold labels?

The student is distilled on the ensemble's soft labels of the unlabeled texts only (as in PET). This
re-distills the students of finished `tasks_bench.py` pet units (split seed 13, their cached soft labels,
the same MiniLM, steps, learning rate and seed as the run) two ways and scores them on DEV only:

  soft        the soft-labeled unlabeled texts (what the run did)
  soft+gold   the same plus the labeled training examples with one-hot gold targets

Dev accuracy is the only score read; test is not touched. Rows land in distill_gold_results.json as each
finishes (atomic rewrite); a rerun skips the rows it has.

    nice -n 5 .venv/bin/python benchmarks/distill_gold.py
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pet_io.example_files import read_examples  # noqa: E402
from prompt_models.distill import distill_soft_labels  # noqa: E402
from prompt_models.training import TrainConfig, configure_threads  # noqa: E402
from tasks.label_tasks import read_soft_labels  # noqa: E402

WORK = ROOT / "benchmarks" / "tasks_work"
OUT = ROOT / "benchmarks" / "distill_gold_results.json"
STUDENT = Path("~/.cache/pet-pipeline/models/all-minilm-l6-v2").expanduser()
TASKS = ["SST-2", "sst-5", "trec", "subj", "mr"]
MACHINE = "2-core CPU VM, no GPU (shared)"


def _save(res: dict) -> None:
    tmp = OUT.with_name(f".{OUT.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(OUT)


def main() -> None:
    configure_threads()
    res = json.loads(OUT.read_text()) if OUT.exists() else {"machine": MACHINE, "split_seed": 13, "rows": []}
    for task in sys.argv[1:] or TASKS:
        unit = WORK / f"{task}-13"
        cfg = yaml.safe_load((unit / "auto.yaml").read_text())
        art = unit / "pet_artifacts"
        labels = [str(x) for x in cfg["labels"]]
        (store,) = list((art / "soft_labels").iterdir())
        shards = sorted(str(d / "labels.parquet") for d in store.iterdir() if (d / "done.json").exists())
        soft_x, soft_p = read_soft_labels(shards)
        train = read_examples(str(next((art / "data").glob("train-*.jsonl"))))
        dev = read_examples(str(next((art / "data").glob("dev-*.jsonl"))))
        gold_p = np.eye(len(labels), dtype=np.float32)[[labels.index(ex.label) for ex in train]]
        d = cfg["distill"]["train"]
        tcfg = TrainConfig(learning_rate=d["learning_rate"], max_steps=d["max_steps"], batch_size=d["batch_size"],
                           temperature=cfg["pet"]["temperature"], progress=False)
        for variant in ("soft", "soft+gold"):
            if any(r["task"] == task and r["variant"] == variant for r in res["rows"]):
                continue
            x, p = (soft_x, soft_p) if variant == "soft" else (soft_x + train, np.concatenate([soft_p, gold_p]))
            t0 = time.time()
            clf, _ = distill_soft_labels(STUDENT, labels, cfg["model"]["max_length"], x, p, tcfg, seed=0)
            acc = clf.evaluate(dev)["accuracy"]
            res["rows"].append(dict(task=task, variant=variant, dev_accuracy=acc, n_train=len(x), n_dev=len(dev),
                                    seconds=round(time.time() - t0, 1)))
            print(f"{task} {variant}: dev {acc:.3f} ({time.time() - t0:.0f} s)", flush=True)
            _save(res)


if __name__ == "__main__":
    main()
