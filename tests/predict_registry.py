"""The registry the ``pet predict`` and serving tests share: two tiny classifiers registered with the
pipeline's own ``log_and_register`` (no flow run: fast); v2 is the champion, so the champion and
``--version 1`` give different probabilities, and a third model reads text pairs."""
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import toy_examples

TEXTS = ["the movie was great", "a bad film", "i loved the plot and the actors were wonderful", "boring", "ok"]
PAIRS = ["good", "awful", "fun", "bad", "great"]
LABELS = ["pos", "neg"]
# a second registered model whose patterns read text_b: its input is text + text_pair
PAIR_SET = {"data.train.text_b": "pair", "data.unlabeled.text_b": "pair", "tracking.registered_model": "predict-pair"}


def _train(tiny_model_dir, folder: Path, steps: int):
    import torch

    from prompt_models.distill import SequenceClassifier
    from prompt_models.training import TrainConfig

    torch.manual_seed(steps)
    clf = SequenceClassifier.from_pretrained(str(tiny_model_dir), LABELS, 32)
    examples = toy_examples(4)
    targets = np.array([[1.0, 0.0] if e.label == "pos" else [0.0, 1.0] for e in examples])
    clf.train_model(examples, targets, TrainConfig(learning_rate=0.003, max_steps=steps, batch_size=8, progress=False))
    clf.save(folder)
    return clf


def _softmax(clf, texts, pairs=None) -> np.ndarray:
    from prompt_models.examples import InputExample

    logits = clf.predict_logits([InputExample(t, pairs[i] if pairs else None) for i, t in enumerate(texts)])
    return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def _register(config, clf_dir: Path, key: str) -> str:
    import mlflow

    from tasks import tracking
    from tasks.classifier_tasks import log_and_register
    from tasks.records import ClassifierRef

    with mlflow.start_run(experiment_id=tracking.setup(config)):
        return log_and_register(config, ClassifierRef(key, str(clf_dir), run_id="", n_train=0), config.tracking.registered_model,
                                 {"classifier_key": key})


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_model_dir):
    """A store with predict-clf v1 and v2 (the champion) and predict-pair v1 (text pairs, the champion),
    and each one's expected probabilities on TEXTS (and PAIRS)."""
    import mlflow

    from pet_config.loading import load_config

    root = tmp_path_factory.mktemp("predict")
    (root / "train.csv").write_text("text,label\nthe movie was great,pos\na bad film,neg\n")
    cfg = {
        "name": "predict",
        "model": {"path": str(tiny_model_dir), "max_length": 32},
        "data": {"train": {"path": "train.csv", "text_a": "text"}, "unlabeled": {"path": "u.csv", "text_a": "text"}},
        "patterns": ["{text_a} it was {mask} ."],
        "verbalizer": {"label_words": {"pos": ["great"], "neg": ["awful"]}},
        "tracking": {"experiment": "predict", "registered_model": "predict-clf"},
        "work_dir": "work",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = load_config(path)
    clf1, clf2 = _train(tiny_model_dir, root / "clf1", 2), _train(tiny_model_dir, root / "clf2", 30)
    expected = {"1": _softmax(clf1, TEXTS), "2": _softmax(clf2, TEXTS), "pair": _softmax(clf2, TEXTS, PAIRS)}
    assert _register(config, root / "clf1", "k1") == "1"
    # the flow registers in a Prefect worker thread, where MLflow's signature inference cannot run
    versions = []
    worker = threading.Thread(target=lambda: versions.append(_register(config, root / "clf2", "k2")))
    worker.start()
    worker.join()
    assert versions == ["2"]
    assert _register(load_config(path, PAIR_SET), root / "clf2", "k2") == "1"
    client = mlflow.MlflowClient(config.tracking_uri())
    client.set_registered_model_alias("predict-clf", "champion", "2")
    client.set_registered_model_alias("predict-pair", "champion", "1")
    return {"root": root, "config": path, "uri": config.tracking_uri(), "expected": expected}


def _check(out: Path, expected: np.ndarray, columns: list[str]):
    df = pd.read_csv(out, keep_default_na=False) if out.suffix == ".csv" else pd.read_json(out, lines=True)
    assert list(df.columns) == columns + ["label", "prob_pos", "prob_neg"]
    assert list(df["text"]) == TEXTS  # one row per input row, in order
    probs = df[["prob_pos", "prob_neg"]].to_numpy()
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.allclose(probs, expected, atol=1e-4)  # batched, length-sorted: same as the classifier row by row
    assert list(df["label"]) == [LABELS[i] for i in expected.argmax(1)]
