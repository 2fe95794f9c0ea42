import dataclasses

import numpy as np
import pytest
import torch

from conftest import toy_examples
from prompt_models.distill import SequenceClassifier, distillation_loss, with_gold_targets
from prompt_models.ensemble import ensemble_weights, merge_logits, soft_labels, softmax
from prompt_models.training import TrainConfig


def test_weights_follow_pre_training_accuracy():
    assert np.allclose(ensemble_weights([0.5, 0.25, 0.25]), [0.5, 0.25, 0.25])
    assert np.allclose(ensemble_weights([0.9, 0.3]), [0.75, 0.25])
    assert np.allclose(ensemble_weights([0.9, 0.3], "uniform"), [0.5, 0.5])


def test_all_zero_accuracies_fall_back_to_uniform():
    assert np.allclose(ensemble_weights([0.0, 0.0, 0.0, 0.0]), [0.25] * 4)


@pytest.mark.parametrize("bad", [[], [float("nan")], [-0.1, 0.5]])
def test_bad_accuracies_are_refused(bad):
    with pytest.raises(ValueError):
        ensemble_weights(bad)


def test_merge_is_the_weighted_mean_of_logits():
    a = np.array([[2.0, 0.0]])
    b = np.array([[0.0, 4.0]])
    assert np.allclose(merge_logits([a, b], [0.75, 0.25]), [[1.5, 1.0]])
    with pytest.raises(ValueError, match="differ in shape"):
        merge_logits([a, np.zeros((2, 2))], [0.5, 0.5])


def test_soft_labels_use_temperature_two():
    logits = np.array([[2.0, 0.0]])
    p = soft_labels(logits, 2.0)
    assert np.allclose(p, [[np.e / (np.e + 1), 1 / (np.e + 1)]], atol=1e-6)
    assert np.allclose(softmax(logits).sum(-1), 1)
    # higher temperature is softer
    assert soft_labels(logits, 4.0)[0, 0] < p[0, 0]


def test_distillation_loss_is_kl_times_t_squared():
    student = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    teacher = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    t = 2.0
    log_q = torch.log_softmax(student / t, -1)
    manual = (teacher * (teacher.log() - log_q)).sum(-1).mean() * t * t
    assert torch.allclose(distillation_loss(student, teacher, t), manual)
    matched = torch.softmax(student / t, -1)
    assert distillation_loss(student, matched, t).abs() < 1e-6


def test_classifier_distills_soft_targets(tiny_model_dir, tmp_path):
    exs = toy_examples()
    targets = np.array([[0.9, 0.1] if e.label == "pos" else [0.1, 0.9] for e in exs])
    clf = SequenceClassifier.from_pretrained(str(tiny_model_dir), ["pos", "neg"], max_length=32)
    clf.train_model(exs, targets, TrainConfig(learning_rate=3e-3, max_steps=60, batch_size=8, progress=False), seed=0)
    assert clf.evaluate(exs)["accuracy"] == 1.0
    clf.save(tmp_path / "clf")
    again = SequenceClassifier.load(tmp_path / "clf")
    assert np.allclose(clf.predict_logits(exs), again.predict_logits(exs), atol=1e-5)
    assert again.model.config.id2label == {0: "pos", 1: "neg"}
    with pytest.raises(ValueError, match="targets shape"):
        clf.train_model(exs, targets[:3], TrainConfig(max_steps=1, progress=False))


def test_distill_task_is_reproducible(tiny_model_dir, tmp_path):
    """Seeding before the head is created makes distillation repeatable (the distill task does this)."""
    from prompt_models.training import set_seed

    exs = toy_examples(2)
    targets = np.array([[0.8, 0.2] if e.label == "pos" else [0.2, 0.8] for e in exs])
    outs = []
    for _ in range(2):
        torch.manual_seed(np.random.randint(1 << 30))  # disturb the global generator
        set_seed(5)
        clf = SequenceClassifier.from_pretrained(str(tiny_model_dir), ["pos", "neg"], max_length=32)
        clf.train_model(exs, targets, TrainConfig(learning_rate=1e-3, max_steps=3, batch_size=4, progress=False), seed=5)
        outs.append(clf.predict_logits(exs))
    assert np.allclose(outs[0], outs[1], atol=1e-6)


def test_gold_targets_follow_the_soft_labels_one_hot_in_label_order():
    soft = toy_examples()[:2]
    labeled = [dataclasses.replace(ex, label=lab) for ex, lab in zip(toy_examples()[:3], ["pos", "neg", "pos"])]
    examples, probs = with_gold_targets(soft, np.array([[0.3, 0.7], [0.6, 0.4]]), labeled, ["neg", "pos"])
    assert examples == [*soft, *labeled]
    assert np.allclose(probs, [[0.3, 0.7], [0.6, 0.4], [0, 1], [1, 0], [0, 1]]) and probs.dtype == np.float32
    with pytest.raises(ValueError, match="unknown label"):
        with_gold_targets(soft, np.zeros((2, 2)), labeled, ["neg", "other"])


def test_the_ensemble_weight_reads_a_sample_of_a_large_labeled_set(tmp_path, tiny_model_dir, monkeypatch):
    """PET's weight (accuracy on train before training) on at most MAX_SCORED_PER_LABEL of each label, one sample
    for all pattern models: 25,000 labeled reviews would all be scored for one number per model."""
    import mlflow
    import pandas as pd
    import yaml

    from conftest import toy_examples
    from pet_config.loading import load_config
    from prompt_models.pet import PETModel
    from tasks import pattern_tasks
    from tasks.data_tasks import load_and_validate

    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(8)]).to_csv(tmp_path / "train.csv",
                                                                                         index=False)
    cfg = {"name": "toy-weight", "model": {"path": str(tiny_model_dir), "max_length": 32},
           "data": {"train": {"path": "train.csv", "text_a": "text"}}, "patterns": ["{text_a} it was {mask}"],
           "verbalizer": {"label_words": {"pos": ["great"], "neg": ["awful"]}},
           "pet": {"train": {"max_steps": 2, "batch_size": 4, "progress": False}},
           "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "w",
                        "registered_model": "w"}, "work_dir": "work"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    config = load_config(tmp_path / "config.yaml")
    scored = []
    evaluate = PETModel.evaluate

    def spy(self, examples, *a, **k):
        scored.append(sorted(e.text_a for e in examples))
        return evaluate(self, examples, *a, **k)

    monkeypatch.setattr(PETModel, "evaluate", spy)
    monkeypatch.setattr(pattern_tasks, "MAX_SCORED_PER_LABEL", 3)
    data = load_and_validate.fn(config)
    refs = [pattern_tasks.train_pattern_model.fn(config, data, cfg["patterns"][0], 0, seed, None) for seed in (1, 2)]
    assert len(scored[0]) == 6  # 3 of each of the 2 labels' 8
    assert scored[1] == scored[0]  # one sample for every pattern model: their weights are compared
    run = mlflow.tracking.MlflowClient(cfg["tracking"]["tracking_uri"]).get_run(refs[0].run_id)
    assert run.data.params["pre_train_examples"] == "6"
