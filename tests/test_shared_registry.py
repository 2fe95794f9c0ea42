"""Two tasks, one registered model name (two configs with one `name`): `pet run` refuses before any work and
`pet predict` refuses to label one task's texts with the other task's classifier.

Found with LM-BFF's SST-2/16-13 and trec/16-13, both named "16-13" by `pet init`: the trec run crashed at
registration ("unknown label '3'; known: ['0', '1']") after registering its version, and `pet predict` of the
trec config went on answering with the SST-2 champion's labels 0/1.
"""
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import toy_examples


def _config(root: Path, tiny_model_dir, labels: list[str]) -> Path:
    words = {lab: [w] for lab, w in zip(labels, ["great", "awful", "good", "bad"])}
    cfg = {
        "name": "shared",
        "labels": labels,
        "model": {"path": str(tiny_model_dir), "max_length": 32},
        "data": {"train": {"path": "train.csv", "text_a": "text"}, "unlabeled": {"path": "train.csv", "text_a": "text"}},
        "patterns": ["{text_a} it was {mask} ."],
        "verbalizer": {"label_words": words},
        "tracking": {"experiment": "shared", "registered_model": "shared-clf"},
        "work_dir": "work",
    }
    path = root / f"{len(labels)}-labels.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory, tiny_model_dir):
    """A store whose 'shared-clf' champion classifies pos/neg, and the config of a 3-label task with that name."""
    import mlflow

    from pet_config.loading import load_config
    from prompt_models.distill import SequenceClassifier
    from prompt_models.training import TrainConfig
    from tasks import tracking
    from tasks.classifier_tasks import log_and_register
    from tasks.records import ClassifierRef

    root = tmp_path_factory.mktemp("shared")
    (root / "train.csv").write_text("text,label\nthe movie was great,pos\na bad film,neg\nso so,meh\n")
    two = load_config(_config(root, tiny_model_dir, ["pos", "neg"]))
    clf = SequenceClassifier.from_pretrained(str(tiny_model_dir), ["pos", "neg"], 32)
    clf.train_model(toy_examples(2), np.array([[1.0, 0.0], [0.0, 1.0]] * 2),
                    TrainConfig(learning_rate=0.003, max_steps=1, batch_size=4, progress=False))
    clf.save(root / "clf")
    with mlflow.start_run(experiment_id=tracking.setup(two)):
        version = log_and_register(two, ClassifierRef("k", str(root / "clf"), run_id="", n_train=0), "shared-clf",
                                   {"classifier_key": "k"})
    mlflow.MlflowClient(two.tracking_uri()).set_registered_model_alias("shared-clf", "champion", version)
    return root, _config(root, tiny_model_dir, ["pos", "neg"]), _config(root, tiny_model_dir, ["pos", "neg", "meh"])


def test_champion_labels_are_checked(two_tasks):
    from flows.lineage import LineageError, check_champion_labels
    from pet_config.loading import load_config

    _, same, other = two_tasks
    check_champion_labels(load_config(same))  # the same task: its own champion, nothing to refuse
    with pytest.raises(LineageError, match=r"its champion \(v1\) classifies labels \['pos', 'neg'\], this config "
                                           r"\['pos', 'neg', 'meh'\]"):
        check_champion_labels(load_config(other))
    reordered = same.with_name("reordered.yaml")  # labels edited by hand: the same task, not another
    reordered.write_text(yaml.safe_dump(dict(yaml.safe_load(same.read_text()), labels=["neg", "pos"]), sort_keys=False))
    with pytest.raises(LineageError, match=r"same labels in another order \['pos', 'neg'\].*write `labels: \['pos', 'neg'\]` back"):
        check_champion_labels(load_config(reordered))


def test_run_and_predict_of_the_other_task_are_refused(two_tasks, capsys, monkeypatch):
    from flows.cli import main

    root, _, other = two_tasks
    monkeypatch.chdir(root)
    assert main(["run", str(other)]) == 2
    assert "classifies labels ['pos', 'neg'], this config ['pos', 'neg', 'meh']" in capsys.readouterr().err
    assert not (root / "work" / "runs").exists()  # refused before a flow took the pipeline's slot
    (root / "in.csv").write_text("text\na fine film\n")
    assert main(["predict", str(other), "in.csv", "-o", "out.csv"]) == 2
    assert "another task's model, or a typo in the config's labels?" in capsys.readouterr().err and not (root / "out.csv").exists()


def test_a_typo_in_labels_is_named_by_the_data_check_not_taken_for_another_task(two_tasks, capsys, monkeypatch):
    from flows.cli import main

    root, same, _ = two_tasks
    monkeypatch.chdir(root)
    cfg = yaml.safe_load(same.read_text())
    cfg["labels"], cfg["verbalizer"]["label_words"] = ["pos", "nge"], {"pos": ["great"], "nge": ["awful"]}
    (root / "typo.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert main(["run", "typo.yaml"]) == 2
    err = capsys.readouterr().err
    assert "unknown label 'neg'" in err and "classifies labels" not in err, err
