"""Design check: should the MiniLM student read the mean of its token states instead of [CLS]?

all-MiniLM-L6-v2 was trained as a sentence encoder with mean pooling (its 1_Pooling/config.json);
``AutoModelForSequenceClassification`` puts the head on the [CLS] state through BERT's pooler, which that
training never used. This re-distills the students of finished `tasks_bench.py` pet units from their
cached soft labels (same MiniLM, steps, learning rate, temperature and seed as the run) with

  cls    the shipped student (BertForSequenceClassification: [CLS] -> pooler -> linear)
  mean   the masked mean of the last hidden states -> dropout 0.1 -> linear (a module built here)

and scores them on DEV only; test is not read. Rows land in student_pooling_results.json as each finishes
(atomic rewrite); a rerun skips the rows it has.

    nice -n 5 .venv/bin/python benchmarks/student_pooling.py trec-13 trec-42 trec-100
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pet_io.atomic import write_json_atomic  # noqa: E402
from pet_io.example_files import read_examples  # noqa: E402
from prompt_models.backbones import load_tokenizer  # noqa: E402
from prompt_models.distill import SequenceClassifier, distill_soft_labels  # noqa: E402
from prompt_models.pair_tuning import mean_pooled  # noqa: E402
from prompt_models.training import TrainConfig, configure_threads, set_seed  # noqa: E402
from tasks.label_tasks import read_soft_labels  # noqa: E402

WORK = ROOT / "benchmarks" / "tasks_work"
OUT = ROOT / "benchmarks" / "student_pooling_results.json"
STUDENT = Path("~/.cache/pet-pipeline/models/all-minilm-l6-v2").expanduser()


class MeanPooled(torch.nn.Module):
    """Encoder -> masked mean of the last hidden states [B, H] -> dropout -> linear [B, L]."""

    def __init__(self, path: Path, num_labels: int):
        super().__init__()
        from transformers import AutoModel

        self.body = AutoModel.from_pretrained(str(path), add_pooling_layer=False)
        self.drop = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(self.body.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask, **kw):
        pooled = mean_pooled(self.body, dict(kw, input_ids=input_ids, attention_mask=attention_mask))  # [B, H]
        return SimpleNamespace(logits=self.head(self.drop(pooled)))


def distill_mean(labels, max_length, x, p, tcfg, seed=0) -> SequenceClassifier:
    set_seed(seed)
    clf = SequenceClassifier(MeanPooled(STUDENT, len(labels)), load_tokenizer(str(STUDENT)), labels, max_length)
    clf.train_model(x, p, tcfg, seed)
    return clf


def main() -> None:
    configure_threads()
    res = json.loads(OUT.read_text()) if OUT.exists() else {"machine": "2-core CPU VM (AMD EPYC), no GPU", "rows": []}
    for unit_name in sys.argv[1:]:
        unit = WORK / unit_name
        cfg = yaml.safe_load((unit / "auto.yaml").read_text())
        art = unit / "pet_artifacts"
        labels = [str(x) for x in cfg["labels"]]
        (store,) = list((art / "soft_labels").iterdir())
        shards = sorted(str(d / "labels.parquet") for d in store.iterdir() if (d / "done.json").exists())
        soft_x, soft_p = read_soft_labels(shards)
        dev = read_examples(str(next((art / "data").glob("dev-*.jsonl"))))
        d = cfg["distill"]["train"]
        tcfg = TrainConfig(learning_rate=d["learning_rate"], max_steps=d["max_steps"], batch_size=d["batch_size"],
                           temperature=cfg["pet"]["temperature"], progress=False)
        for variant in ("cls", "mean"):
            if any(r["unit"] == unit_name and r["variant"] == variant for r in res["rows"]):
                continue
            t0 = time.time()
            if variant == "cls":
                clf, _ = distill_soft_labels(STUDENT, labels, cfg["model"]["max_length"], soft_x, soft_p, tcfg, seed=0)
            else:
                clf = distill_mean(labels, cfg["model"]["max_length"], soft_x, soft_p, tcfg, seed=0)
            acc = clf.evaluate(dev)["accuracy"]
            res["rows"].append(dict(unit=unit_name, variant=variant, dev_accuracy=acc, n_dev=len(dev),
                                    n_soft=len(soft_x), seconds=round(time.time() - t0, 1)))
            print(f"{unit_name} {variant}: dev {acc:.3f} ({time.time() - t0:.0f} s)", flush=True)
            write_json_atomic(OUT, res, indent=1)


if __name__ == "__main__":
    main()
