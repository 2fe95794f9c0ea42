"""Figures logged to MLflow: a confusion matrix per evaluated split (in each evaluation's stage run)
and an accuracy bar chart of every pattern model, the ensemble and the classifier (in the flow's run).

Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas, not through ``pyplot``: the
evaluation tasks run in parallel threads, and pyplot's global figure registry is neither thread-safe
nor freed without ``plt.close``. A ``Figure`` made this way is never registered, so it goes with its
last reference.
"""
from __future__ import annotations

import math
from typing import Sequence

import mlflow
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SPLITS = ("dev", "test")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def confusion_figure(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> Figure:
    cm = np.asarray(matrix, dtype=np.int64)
    n = len(labels)
    if cm.shape != (n, n):
        raise ValueError(f"a confusion matrix over {n} labels must be {n}x{n}, not {cm.shape}")
    side = 2.5 + 0.6 * n
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), [str(label) for label in labels], rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), [str(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    total = int(cm.sum())
    acc = np.trace(cm) / total if total else 0.0
    ax.set_title(f"{title}\naccuracy {acc:.3f} (n={total})", fontsize=10)
    dark = cm.max() / 2 if cm.max() else 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > dark else "black")
    return fig


def log_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], split: str, title: str) -> None:
    """``confusion_<split>.png`` and ``confusion_<split>.json`` in the active run."""
    cm = np.asarray(matrix, dtype=np.int64)
    mlflow.log_figure(confusion_figure(cm, labels, f"{title}: {split}"), f"confusion_{split}.png")
    mlflow.log_dict(
        {"labels": [str(label) for label in labels], "rows": "gold", "columns": "predicted", "matrix": cm.tolist()},
        f"confusion_{split}.json",
    )


def log_confusions(scores: dict[str, dict], labels: Sequence[str], title: str) -> None:
    """One confusion matrix per split of ``{split: classification_metrics(...)}``."""
    for split, metrics in scores.items():
        log_confusion(metrics["confusion"], labels, split, title)


def _model_names(pattern_models: Sequence[dict]) -> tuple[list[str], list[str]]:
    """Short bar names (P<i> s<seed>[ g<generation>]) and the template each P<i> stands for."""
    templates: list[str] = []
    names = []
    for m in pattern_models:
        if m["template"] not in templates:
            templates.append(m["template"])
        name = f"P{templates.index(m['template'])} s{m['seed']}"
        names.append(name + (f" g{m['generation']}" if m.get("generation") else ""))
    return names, templates


def accuracy_rows(pattern_models: Sequence[dict], ensemble_metrics: dict, classifier_metrics: dict) -> list[dict]:
    names, _ = _model_names(pattern_models)
    rows = [dict(name=n, kind="pattern", template=m["template"], **_accuracies(m["metrics"])) for n, m in zip(names, pattern_models)]
    rows.append(dict(name="ensemble", kind="ensemble", **_accuracies(ensemble_metrics)))
    rows.append(dict(name="classifier", kind="classifier", **_accuracies(classifier_metrics)))
    return rows


def _accuracies(metrics: dict) -> dict:
    return {split: metrics.get(f"{split}_accuracy") for split in SPLITS}


def accuracy_figure(rows: Sequence[dict], templates: Sequence[str] = ()) -> Figure:
    fig = _figure(max(6.0, 1.1 * len(rows) + 2), 4.5 + 0.25 * len(templates))
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    width = 0.38
    for k, (split, color) in enumerate(zip(SPLITS, ("tab:blue", "tab:orange"))):
        values = [r[split] if r[split] is not None else math.nan for r in rows]
        if all(math.isnan(v) for v in values):
            continue  # e.g. no test file
        bars = ax.bar(x + (k - 0.5) * width, values, width, label=split, color=color)
        for bar, row in zip(bars, rows):
            if row["kind"] != "pattern":  # the two models people compare against the patterns
                bar.set_hatch("//")
                bar.set_edgecolor("black")
        ax.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.2f}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(x, [r["name"] for r in rows], rotation=30, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy by model")
    if ax.containers:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars can reach any height
    else:  # neither dev nor test (`pet init` without --dev/--test): said on the chart, not by a legend warning
        ax.text(0.5, 0.5, "no dev or test split: nothing scored", ha="center", va="center", transform=ax.transAxes)
    if templates:  # the x label, so that the layout makes room for it
        ax.set_xlabel("\n".join(f"P{i}: {t}" for i, t in enumerate(templates)), fontsize=7, loc="left")
    return fig


def log_accuracy_chart(pattern_models: list[dict], ensemble_metrics: dict, classifier_metrics: dict) -> None:
    """``accuracy_by_model.png`` (and the numbers as ``accuracy_by_model.json``) in the active run:
    dev/test accuracy of every pattern model, the ensemble and the distilled classifier."""
    rows = accuracy_rows(pattern_models, ensemble_metrics, classifier_metrics)
    _, templates = _model_names(pattern_models)
    mlflow.log_figure(accuracy_figure(rows, templates), "accuracy_by_model.png")
    mlflow.log_dict({"models": rows, "templates": {f"P{i}": t for i, t in enumerate(templates)}}, "accuracy_by_model.json")
