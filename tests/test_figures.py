"""Confusion matrices and the accuracy chart logged to MLflow (tasks.figures)."""
import threading

import mlflow
import numpy as np
import pytest

from prompt_models.training import classification_metrics, confusion_matrix

LABELS = ["neg", "pos", "neutral"]
GOLD = np.array([0, 0, 1, 1, 1, 2])
PRED = np.array([0, 1, 1, 1, 0, 2])
EXPECTED = [[1, 1, 0], [1, 2, 0], [0, 0, 1]]  # rows gold, columns predicted


@pytest.fixture
def run_in_store(tmp_path):
    """An active run in a sqlite store whose artifacts live under tmp_path."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("figures", artifact_location=(tmp_path / "artifacts").as_uri())
    try:
        with mlflow.start_run(experiment_id=exp) as run:
            yield run
    finally:
        mlflow.set_tracking_uri(before)


def _artifacts(run_id):
    return sorted(a.path for a in mlflow.MlflowClient().list_artifacts(run_id))


def test_confusion_counts_on_a_known_example():
    assert confusion_matrix(PRED, GOLD, 3).tolist() == EXPECTED
    logits = np.eye(3)[PRED]
    m = classification_metrics(logits, GOLD, 3)
    assert m["confusion"] == EXPECTED and m["accuracy"] == pytest.approx(4 / 6)
    assert confusion_matrix(np.array([], int), np.array([], int), 2).tolist() == [[0, 0], [0, 0]]


def test_confusion_figure_and_json_are_logged(run_in_store):
    from tasks import figures

    scores = {"dev": classification_metrics(np.eye(3)[PRED], GOLD, 3), "test": classification_metrics(np.eye(3)[GOLD], GOLD, 3)}
    figures.log_confusions(scores, LABELS, "ensemble")
    run_id = run_in_store.info.run_id
    assert _artifacts(run_id) == ["confusion_dev.json", "confusion_dev.png", "confusion_test.json", "confusion_test.png"]
    dev = mlflow.artifacts.load_dict(f"runs:/{run_id}/confusion_dev.json")
    assert dev == {"labels": LABELS, "rows": "gold", "columns": "predicted", "matrix": EXPECTED}
    test = mlflow.artifacts.load_dict(f"runs:/{run_id}/confusion_test.json")
    assert test["matrix"] == np.diag([2, 3, 1]).tolist()
    png = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/confusion_dev.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_confusion_figure_shows_labels_and_counts():
    from tasks.figures import confusion_figure

    fig = confusion_figure(EXPECTED, LABELS, "t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == LABELS
    assert [t.get_text() for t in ax.get_yticklabels()] == LABELS
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(c) for row in EXPECTED for c in row)
    with pytest.raises(ValueError, match="3x3"):
        confusion_figure([[1, 2], [3, 4]], LABELS, "t")


def test_figures_from_parallel_tasks_do_not_collide(tmp_path):
    # evaluation tasks run in threads: no shared pyplot state, every figure complete
    from tasks.figures import confusion_figure

    errors = []

    def draw(i):
        try:
            confusion_figure(np.full((3, 3), i), LABELS, f"t{i}").savefig(tmp_path / f"{i}.png")
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(list(tmp_path.glob("*.png"))) == 6


def _pattern(template, seed, dev, test=None, generation=0):
    metrics = {"pre_train_accuracy": 0.5, "dev_accuracy": dev}
    if test is not None:
        metrics["test_accuracy"] = test
    return {"key": f"k{seed}", "template": template, "seed": seed, "generation": generation, "cached": False, "metrics": metrics}


def test_accuracy_chart_compares_patterns_ensemble_and_classifier(run_in_store):
    from tasks.figures import log_accuracy_chart

    models = [_pattern("{text_a} It was {mask} .", 1, 0.6, 0.55), _pattern("Just {mask} ! {text_a}", 1, 0.7, 0.65),
              _pattern("{text_a} It was {mask} .", 2, 0.8, 0.75)]
    log_accuracy_chart(models, {"dev_accuracy": 0.85, "test_accuracy": 0.8, "dev_macro_f1": 0.8}, {"dev_accuracy": 0.9, "test_accuracy": 0.82})
    run_id = run_in_store.info.run_id
    assert _artifacts(run_id) == ["accuracy_by_model.json", "accuracy_by_model.png"]
    data = mlflow.artifacts.load_dict(f"runs:/{run_id}/accuracy_by_model.json")
    assert [r["name"] for r in data["models"]] == ["P0 s1", "P1 s1", "P0 s2", "ensemble", "classifier"]
    assert [(r["dev"], r["test"]) for r in data["models"]] == [(0.6, 0.55), (0.7, 0.65), (0.8, 0.75), (0.85, 0.8), (0.9, 0.82)]
    assert data["templates"] == {"P0": "{text_a} It was {mask} .", "P1": "Just {mask} ! {text_a}"}


def test_accuracy_chart_without_a_test_split_and_with_ipet_generations(run_in_store):
    from tasks.figures import accuracy_figure, accuracy_rows, log_accuracy_chart

    models = [_pattern("{text_a} It was {mask} .", 1, 0.6, generation=2)]
    rows = accuracy_rows(models, {"dev_accuracy": 0.7}, {"dev_accuracy": 0.75})
    assert [r["name"] for r in rows] == ["P0 s1 g2", "ensemble", "classifier"]
    assert all(r["test"] is None for r in rows)
    ax = accuracy_figure(rows).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dev"]  # no empty test bars
    log_accuracy_chart(models, {"dev_accuracy": 0.7}, {"dev_accuracy": 0.75})
    assert "accuracy_by_model.png" in _artifacts(run_in_store.info.run_id)


def test_accuracy_chart_without_dev_or_test_says_so_without_a_warning(run_in_store):
    import warnings

    from tasks.figures import accuracy_figure, accuracy_rows

    rows = accuracy_rows([_pattern("{text_a} It was {mask} .", 1, None)], {}, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels found to put in legend"
        ax = accuracy_figure(rows).axes[0]
    assert ax.get_legend() is None and [t.get_text() for t in ax.texts] == ["no dev or test split: nothing scored"]
