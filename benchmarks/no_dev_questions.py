"""Questions without a dev set: does the question template that takes the last chosen place pay?

Since commit 304b447, with no dev set to re-rank on, a template written for the task's kind of text
(the question templates, for questions) that zero-shot ranking passed over takes the last chosen
place (`auto_prompts.select_prompts`, `task_template_swap`). The rule was set from dev checks only
(trained, a question template was at least as good on dev as the zero-shot choice in all 4 measured).
This measures it on test, after the fact, on trec (LM-BFF 16-shot splits 13, 42, 100; 1,000 unlabeled
texts and the test cap as in tasks_bench.py), per split seed:

  swap        `pet init` without --dev + `pet run`, as shipped
  zero-shot   the same run with the patterns frozen to the zero-shot choice (the top `num_patterns` of
              the ranking, same label words and settings), only where the swap changed the patterns;
              the shared pattern models are cache hits of the same work_dir

Rows go to benchmarks/no_dev_questions_results.json as each unit finishes (resumable; `sample_seed` is
the split seed).

    nice -n 5 .venv/bin/python benchmarks/no_dev_questions.py [--seeds 13 42 100]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from tasks_bench import _cli, _files, _pet_rows, _stage_seconds, run_samples  # noqa: E402

OUT = ROOT / "benchmarks" / "no_dev_questions_results.json"
UNITS = ["swap", "zero-shot"]


def _choice(cfg_path: Path) -> dict:
    """The choose-prompts record of the run of ``cfg_path`` (its one cached choice)."""
    cfg = yaml.safe_load(cfg_path.read_text())
    (done,) = (cfg_path.parent / cfg["work_dir"] / "search" / "auto_prompts").glob("*/done.json")
    return json.loads(done.read_text())


def run_unit(f: dict, unit: str, seed: int) -> list[dict]:
    folder = f["dir"] / "no-dev"
    folder.mkdir(exist_ok=True)
    cfg = folder / "auto.yaml"
    flags = [] if f["header"] else ["--text-column", "1", "--label-column", "0"]
    t0 = time.time()
    if unit == "swap":
        _cli("init", str(f["train"]), "--unlabeled", str(f["unlabeled"]), "--test", str(f["test"]),
             "--name", f"trec-{seed}-no-dev", "-o", str(cfg), "--force", *flags)
        run = cfg
    else:
        choice = _choice(cfg)
        if not choice["task_template_swap"]:
            return []  # the zero-shot choice is what ran
        frozen = yaml.safe_load(cfg.read_text())
        n = len(choice["templates"])
        frozen["patterns"] = [s["template"] for s in choice["template_scores"][:n]]
        frozen["verbalizer"] = dict(frozen.get("verbalizer") or {}, label_words=choice["label_words"])
        run = folder / "zero_shot_choice.yaml"
        run.write_text(yaml.safe_dump(frozen, sort_keys=False, allow_unicode=True))
    summary = _cli("run", str(run), "--json", "-q")
    choice = _choice(cfg)
    return _pet_rows(summary, time.time() - t0, {
        "config": f"pet init without --dev ({unit})", "swap": choice["task_template_swap"],
        "selection_split": choice["selection_split"], "run_s": summary["seconds"],
        "pattern_models_cached": f"{sum(m['cached'] for m in summary['pattern_models'])}/{len(summary['pattern_models'])}",
        "stage_s": _stage_seconds(run, summary["mlflow_run_id"])})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 42, 100])
    args = ap.parse_args()
    res = json.loads(OUT.read_text()) if OUT.exists() else {
        "machine": "2-core CPU VM (AMD EPYC), no GPU, shared with another job during the run",
        "task": "trec, LM-BFF 16-shot splits (sample_seed is the split seed), no dev set given to pet init; "
                "test capped as in tasks_bench.py",
        "rows": []}
    # a zero-shot unit with no rows (no swap: the zero-shot choice is what ran) is rechecked on resume, at no cost
    run_samples(OUT, res, args.seeds, UNITS, lambda seed: _files("trec", seed), run_unit, "trec without dev")


if __name__ == "__main__":
    main()
