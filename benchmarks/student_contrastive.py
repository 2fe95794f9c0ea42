"""Design check: should the student start from a contrastively tuned body (SetFit's first step)?

On trec the distilled MiniLM trails SetFit with the same body by 7 points (RESULTS.md): SetFit tunes the
body on pairs of labeled examples (same label: cosine 1, else 0) before fitting its head, and its
teacher-free pairs suit 6 question types better than our ensemble's soft labels. This re-distills the
students of finished `tasks_bench.py` pet units from their cached soft labels (plus the labeled examples
with gold targets where the run used them: `distill.with_train`), same steps, learning rate, temperature
and seed as the run, from

  shipped       the run's own student (as `pet run` made it)
  setfit        SetFit 1.2.0 itself at its defaults (the peer, scored on dev here for reference)
  pairs         the student's encoder first tuned on SetFit's pairs of the labeled examples
                (`prompt_models.pair_tuning`: SetFit's defaults on the project's training loop), then
                distilled as the run did (BertForSequenceClassification: [CLS] -> pooler -> linear)

and scores them on DEV only; test is not read.

Decision rule, fixed before the rows ran (2026-12-06): pair tuning becomes the student's default for tasks
of 3 or more labels if `pairs` beats `shipped` by at least 1 point on the mean dev accuracy of trec x split
seeds 13 / 42 / 100 and loses more than 3 points on none of them; sst-5 and binary tasks are then checked
the same way before the rule reaches them. Rows land in student_contrastive_results.json as each
finishes (atomic rewrite); a rerun skips the rows it has.

    nice -n 5 .venv/bin/python benchmarks/student_contrastive.py trec-13 trec-42 trec-100
    nice -n 5 .venv/bin/python benchmarks/student_contrastive.py --no-setfit sst-5-13 sst-5-42 sst-5-100

``--no-setfit`` leaves out the reference row (6 minutes a unit here), which the rule does not read.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_gold import _only  # noqa: E402 (benchmarks/, the script's own folder, is on sys.path)
from tasks_bench import setfit_model  # noqa: E402
from pet_config.loading import load_config  # noqa: E402
from pet_io.atomic import write_json_atomic  # noqa: E402
from pet_io.example_files import read_examples  # noqa: E402
from pet_zoo.resolve import resolve_models  # noqa: E402
from prompt_models.distill import SequenceClassifier, distill_soft_labels, with_gold_targets  # noqa: E402
from prompt_models.training import configure_threads  # noqa: E402
from tasks.classifier_tasks import distill_train_cfg  # noqa: E402
from tasks.label_tasks import read_soft_labels  # noqa: E402

WORK = ROOT / "benchmarks" / "tasks_work"
OUT = ROOT / "benchmarks" / "student_contrastive_results.json"
MACHINE = "2-core CPU VM, no GPU (shared)"


def setfit_dev(train, dev, labels, scratch: Path) -> float:
    """SetFit at its defaults on ``train`` (as the benchmark's setfit unit has it), scored on ``dev``."""
    model = setfit_model([e.text_a for e in train], [e.label for e in train], labels, scratch)
    pred = [labels[int(i)] for i in model.predict([e.text_a for e in dev])]
    return sum(a == e.label for a, e in zip(pred, dev)) / len(dev)


def check_unit(unit: str, res: dict, with_setfit: bool = True) -> None:
    folder = WORK / unit
    cfg = resolve_models(load_config(folder / "auto.yaml"), install=False)  # settings and models as `pet run` has them
    art = folder / "pet_artifacts"
    labels, student = cfg.labels, cfg.resolve(cfg.distill.model_path or cfg.model.path)
    store = _only(art / "soft_labels")
    dev = read_examples(str(next((art / "data").glob("dev-*.jsonl"))))
    train = read_examples(str(next((art / "data").glob("train-*.jsonl"))))
    shards = sorted(str(d / "labels.parquet") for d in store.iterdir() if (d / "done.json").exists())
    x, p = read_soft_labels(shards)
    if cfg.distill.with_train:
        x, p = with_gold_targets(x, p, train, labels)
    tcfg = distill_train_cfg(cfg)
    have = {r["variant"] for r in res["rows"] if r["unit"] == unit and r["soft_labels"] == store.name}
    row = dict(unit=unit, soft_labels=store.name, n_dev=len(dev), n_train=len(x), with_train=cfg.distill.with_train)

    def add(variant: str, acc: float, t0: float) -> None:
        res["rows"].append(dict(row, variant=variant, dev_accuracy=acc, seconds=round(time.time() - t0, 1)))
        print(f"{unit} {variant}: dev {acc:.3f} ({time.time() - t0:.0f} s)", flush=True)
        write_json_atomic(OUT, res, indent=1)

    if "shipped" not in have:
        t0 = time.time()
        add("shipped", SequenceClassifier.load(_only(art / "classifiers") / "model").evaluate(dev)["accuracy"], t0)
    if with_setfit and "setfit" not in have:
        t0 = time.time()
        add("setfit", setfit_dev(train, dev, labels, folder / "setfit_scratch"), t0)
        shutil.rmtree(folder / "setfit_scratch", ignore_errors=True)
    if "pairs" not in have:
        t0 = time.time()
        # what `pet run` does with distill.pair_tuning: true (the head initialised as in the run)
        clf, fit = distill_soft_labels(student, labels, cfg.model.max_length, x, p, tcfg, cfg.distill.seed,
                                       pair_examples=train)
        tuned = fit["pairs"]
        print(f"{unit} pairs: {tuned['steps']} steps on {tuned['n_pairs']} pairs, loss {tuned.get('final_loss', 0):.4f}",
              flush=True)
        add("pairs", clf.evaluate(dev)["accuracy"], t0)


def main() -> None:
    configure_threads()
    res = json.loads(OUT.read_text()) if OUT.exists() else {"machine": MACHINE, "rows": []}
    args = sys.argv[1:]
    for unit in (a for a in args if a != "--no-setfit"):
        check_unit(unit, res, "--no-setfit" not in args)


if __name__ == "__main__":
    main()
