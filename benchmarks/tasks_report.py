"""The table (in RESULTS.md, between markers) and the bar chart of benchmarks/tasks_results.json."""
from __future__ import annotations

import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
CHART = ROOT / "benchmarks" / "tasks_results.png"
START, END = "<!-- tasks_bench:start -->", "<!-- tasks_bench:end -->"
METHODS = ["pet-student", "pet-ensemble", "zero-shot-calibrated", "setfit", "finetune", "hand-ensemble", "hand-student",
           "pet-lora-student", "pet-lora-ensemble"]


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f} ({len(values)})"


def table(res: dict) -> str:
    rows = [r for r in res["rows"] if r.get("test_accuracy") is not None]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    lines = ["| task | " + " | ".join(METHODS) + " |", "|---" * (len(METHODS) + 1) + "|"]
    for t in tasks:
        cells = [_cell([r["test_accuracy"] for r in rows if r["task"] == t and r["method"] == m]) for m in METHODS]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    walls = []
    for unit in ("pet", "pet-lora", "userpath", "hand", "setfit", "finetune"):  # userpath rows have no test accuracy
        w = {(r["task"], r["seed"]): r["wall_s"] for r in res["rows"] if r["unit"] == unit}
        if w:
            walls.append(f"{unit} {statistics.mean(w.values()):.0f} s (max {max(w.values()):.0f} s, {len(w)} runs)")
    fails = res.get("failures", [])
    return "\n".join([
        f"Machine: {res['machine']}. Test accuracy, mean ± std over split seeds (number of seeds in brackets); "
        f"test sets capped at {res['test_cap']} rows (fixed sample, random_state 0), {res['n_unlabeled']} "
        "unlabeled texts per task. pet-*: `pet init` + `pet run` with automatic prompts; "
        "zero-shot-calibrated: the backbone untrained with the chosen prompts; hand-*: configs/sst2.yaml, "
        "configs/trec.yaml on the same files.",
        "", *lines, "",
        "Wall seconds per run (mean): " + "; ".join(walls) + ".",
        f"Failed units so far: {len(fails)}." if fails else "",
    ])


def chart(res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in res["rows"] if r.get("test_accuracy") is not None]
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    if not tasks:
        return
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks)), 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        vals = [[r["test_accuracy"] for r in rows if r["task"] == t and r["method"] == m] for t in tasks]
        means = [np.mean(v) if v else 0 for v in vals]
        sds = [np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals]
        ax.bar(np.arange(len(tasks)) + i * width, means, width, yerr=sds, label=m, capsize=2)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2, tasks)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("pet init + pet run vs peers (16-shot, mean over split seeds)")
    fig.tight_layout()
    tmp = CHART.with_name(".tasks_results.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(CHART)


def write_report(res: dict) -> None:
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else ""
    block = f"{START}\n{table(res)}\n{END}"
    if START in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Six tasks, the user's path: `pet init` + `pet run` against SetFit\n\n" \
               "`benchmarks/tasks_bench.py` (see its docstring); chart `benchmarks/tasks_results.png`.\n\n" + block + "\n"
    tmp = RESULTS_MD.with_name(".RESULTS.md.tmp")
    tmp.write_text(text)
    tmp.replace(RESULTS_MD)
    chart(res)
