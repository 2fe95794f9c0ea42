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


LORA_START, LORA_END = "<!-- tasks_bench_lora:start -->", "<!-- tasks_bench_lora:end -->"


def lora_pairs(res: dict) -> str:
    """The pet unit against the pet-lora unit, unit by unit where both ran: dev (what decides) and test. Walls
    of the pet-lora unit only: the pet rows ran on other days and CPUs."""
    def row(task, seed, method):
        return next((r for r in res["rows"] if (r["task"], r["seed"], r["method"]) == (task, seed, method)), None)

    units = [(r["task"], r["seed"]) for r in res["rows"] if r["method"] == "pet-lora-student" and row(r["task"], r["seed"], "pet-student")]
    lines = ["| task | seed | student dev | student test | ensemble dev | ensemble test | same prompts | bf16 labeling | "
             "pet-lora wall s | pet-lora CPU |", "|---|---|---|---|---|---|---|---|---|---|"]
    sums: dict[str, list[float]] = {}
    for task, seed in units:
        cells = []
        for kind in ("student", "ensemble"):
            full, lora = row(task, seed, f"pet-{kind}"), row(task, seed, f"pet-lora-{kind}")
            for split in ("dev", "test"):
                a, b = full[f"{split}_accuracy"], lora[f"{split}_accuracy"]
                sums.setdefault(f"{kind} {split}", []).append(b - a)
                cells.append(f"{a:.3f} -> {b:.3f}")
        full, lora = row(task, seed, "pet-student"), row(task, seed, "pet-lora-student")
        same = full["details"]["templates"] == lora["details"]["templates"] and \
            full["details"].get("label_words") == lora["details"].get("label_words")
        precision = [v for k, v in lora["details"].get("label_precision", {}).items() if k.startswith("label_precision.")]
        bf16 = f"{precision.count('bf16')} of {len(precision)}" if precision else "–"
        lines.append(f"| {task} | {seed} | " + " | ".join(cells) + f" | {'yes' if same else 'no'} | {bf16} | "
                     f"{lora['wall_s']:.0f} | {lora['details'].get('cpu', '–')} |")
    means = " | ".join(f"{statistics.mean(sums[k]) * 100:+.1f}" for k in
                       ("student dev", "student test", "ensemble dev", "ensemble test")) if units else "– | – | – | –"
    lines.append(f"| mean difference (points) | {len(units)} units | {means} | | | | |")
    return "\n".join(lines)


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
    if LORA_START in text:
        block = f"{LORA_START}\n{lora_pairs(res)}\n{LORA_END}"
        text = text[: text.index(LORA_START)] + block + text[text.index(LORA_END) + len(LORA_END):]
    tmp = RESULTS_MD.with_name(".RESULTS.md.tmp")
    tmp.write_text(text)
    tmp.replace(RESULTS_MD)
    chart(res)
