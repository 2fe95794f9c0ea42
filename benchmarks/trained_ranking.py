"""Design check: does calibrated zero-shot accuracy rank prompts the way training does?

Takes prompt choices recorded by auto_prompt_design.py (split seed 21's train/dev; ``--results``) for one
task, trains each chosen template as the pipeline does (suggest_train_settings: steps and learning rate
from |T|, the labels and the backbone; mlm_alpha 0 as `pet init` writes; seed 1), and scores the trained
model on seed 21's dev (where a trained re-ranking would choose) and on seed 87's train + dev (held out;
labeled texts from the task's training set, not its test set). Test sets are not read. ``--swap``: the
choices ``auto_prompt_design.py --swap`` made on seed 87, held out on seed 21 (a second draw).

    nice -n 5 .venv/bin/python benchmarks/trained_ranking.py --task trec

Rows go to benchmarks/trained_ranking_results.json as each (variant, template) finishes (resumable).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
OUT = ROOT / "benchmarks" / "trained_ranking_results.json"
BACKBONE = Path("~/.cache/pet-pipeline/models/smollm2-135m-instruct").expanduser()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="trec")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "auto_prompt_templates.json")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--variants", nargs="*", default=[
        "shipped: content words of the text + continuations among them", "shipped + content-word continuations",
        "reference: hand-written label words", "reference: hand-written patterns and label words"])
    ap.add_argument("--swap", action="store_true", help="the choices made on seed 87, held out on seed 21")
    ap.add_argument("--report", action="store_true", help="print the kept pairs of the rows in --out, train nothing")
    args = ap.parse_args()
    if args.report:
        return report(json.loads(args.out.read_text())["rows"])
    from auto_prompt_design import split_seeds
    from tasks_bench import DESIGN_SEEDS, design_splits
    seeds = DESIGN_SEEDS[::-1] if args.swap else DESIGN_SEEDS

    from pet_io.atomic import write_json_atomic
    from prompt_models.auto_settings import suggest_train_settings
    from prompt_models.backbones import CAUSAL, load_language_model, load_tokenizer
    from prompt_models.patterns import Pattern
    from prompt_models.pet import PETModel
    from prompt_models.training import TrainConfig, configure_threads
    from prompt_models.verbalizer import Verbalizer

    configure_threads()
    choices = {r["variant"]: r for r in json.loads(args.results.read_text())["rows"]
               if r["task"] == args.task and split_seeds(r) == seeds}
    ex, held, labels, _ = design_splits(args.task, seeds)
    tok = load_tokenizer(BACKBONE)
    n_params = sum(p.numel() for p in load_language_model(BACKBONE, CAUSAL).parameters())
    settings = suggest_train_settings(len(ex["train"]), len(labels), n_params)
    res = json.loads(args.out.read_text()) if args.out.exists() else {"machine": "2-core CPU VM (AMD EPYC), no GPU",
                                                                      "rows": []}
    for variant in args.variants:
        if variant not in choices:  # the reference rows exist for some tasks only
            print(f"{args.task}: no recorded choice for {variant!r}, skipped", flush=True)
            continue
        choice = choices[variant]
        # the pipeline trains its trained candidates (a passed-over question template too) and keeps the best two
        for template in choice.get("trained_candidates", choice["templates"]):
            if any((r["task"], r["variant"], r["template"], split_seeds(r)) == (args.task, variant, template, seeds)
                   for r in res["rows"]):
                continue
            t0 = time.time()
            model = PETModel(load_language_model(BACKBONE, CAUSAL), tok, Pattern(template),
                             Verbalizer({lab: choice["label_words"][lab] for lab in labels}), 128)
            model.train_model(ex["train"], TrainConfig(**settings, mlm_alpha=0.0, progress=False), seed=1)
            row = dict(task=args.task, variant=variant, split_seeds=list(seeds), template=template,
                       label_words=choice["label_words"],
                       zero_shot_dev=choice["selection_dev_accuracy"], zero_shot_held_out=choice["held_out_accuracy"],
                       settings=settings, seconds=0.0)
            for name, examples in (("dev", ex["dev"]), ("held_out", held)):
                logits = model.predict_logits(examples)
                gold = np.array([labels.index(e.label) for e in examples])
                row[f"trained_{name}_accuracy"] = float((logits.argmax(-1) == gold).mean())
                row[f"{name}_logits"] = logits.tolist()
            row["seconds"] = round(time.time() - t0, 1)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("logits")}), flush=True)
            res["rows"].append(row)
            write_json_atomic(args.out, res, indent=None)


def report(rows: list[dict]) -> None:
    """Per (task, split seeds, variant): the two models the pipeline keeps (best trained dev accuracy, the
    zero-shot order on ties: rows are in that order) and their mean dev and held-out accuracy."""
    from auto_prompt_design import split_seeds

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], split_seeds(r), r["variant"]), []).append(r)
    for (task, seeds, variant), trained in sorted(groups.items()):
        kept = sorted(trained, key=lambda r: -r["trained_dev_accuracy"])[:2]
        dev, held = (float(np.mean([r[f"trained_{k}_accuracy"] for r in kept])) for k in ("dev", "held_out"))
        print(f"{task:6} {seeds[0]}->{seeds[1]}  {variant[:60]:60} trained {len(trained)}  kept dev {dev:.3f}"
              f"  held out {held:.3f}")


if __name__ == "__main__":
    main()
