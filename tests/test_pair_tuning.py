"""SetFit's pair step for the student (prompt_models/pair_tuning.py), on the tiny BERT built in code."""
import numpy as np
import torch
from torch.nn import functional as F

from conftest import toy_examples
from prompt_models.distill import SequenceClassifier, distill_soft_labels
from prompt_models.examples import gold_indices
from prompt_models.pair_tuning import MAX_PAIR_STEPS, contrastive_pairs, mean_pooled, pair_train_cfg, tune_on_pairs
from prompt_models.training import TrainConfig


def test_pairs_are_setfit_oversampling():
    gold = [0, 0, 0, 1, 1, 2]  # pairs i <= j: 21, of them 6 + 3 + 1 = 10 same-label
    pairs = contrastive_pairs(gold)
    pos = [(i, j) for i, j, t in pairs if t == 1.0]
    neg = [(i, j) for i, j, t in pairs if t == 0.0]
    assert len(pos) == len(neg) == 11  # the 10 positives repeated to the 11 negatives
    assert len(set(pos)) == 10 and len(set(neg)) == 11
    assert all(gold[i] == gold[j] for i, j in pos) and all(gold[i] != gold[j] for i, j in neg)
    assert [t for _, _, t in pairs[:4]] == [1.0, 0.0, 1.0, 0.0]
    assert contrastive_pairs(gold) == pairs  # seeded


def test_one_label_gives_positives_only():
    assert {t for _, _, t in contrastive_pairs([0, 0, 0])} == {1.0}


def test_steps_are_one_epoch_capped():
    assert pair_train_cfg(7680).max_steps == 480  # trec 16-shot: 6 labels x 16
    assert pair_train_cfg(10**6).max_steps == MAX_PAIR_STEPS


def _label_separation(clf, examples, gold) -> float:
    """Mean cosine of same-label pairs minus that of different-label pairs."""
    with torch.no_grad():
        emb = F.normalize(mean_pooled(clf.model.base_model, clf.batch(examples)), dim=-1)
    sim = emb @ emb.T
    same = torch.tensor(gold)[:, None] == torch.tensor(gold)[None, :]
    return float(sim[same].mean() - sim[~same].mean())


def test_tuning_pulls_labels_apart_and_keeps_the_head(tiny_model_dir):
    examples = toy_examples(8)
    clf = SequenceClassifier.from_pretrained(str(tiny_model_dir), ["neg", "pos"], 32)
    gold = gold_indices(examples, clf.labels)
    head = {k: v.clone() for k, v in clf.model.classifier.state_dict().items()}
    before = _label_separation(clf, examples, gold)
    # the tiny random BERT needs a larger step than SetFit's 2e-5 to move in a test's time
    fit = tune_on_pairs(clf, examples, gold, seed=0, cfg=TrainConfig(learning_rate=1e-3, max_steps=40, batch_size=16))
    assert fit["steps"] == 40 and fit["n_pairs"] == 144  # 16 examples: 72 same-label pairs, 64 others, oversampled
    assert _label_separation(clf, examples, gold) > before + 0.05
    assert all(torch.equal(v, clf.model.classifier.state_dict()[k]) for k, v in head.items())


def test_distillation_with_pair_examples_tunes_the_encoder_first(tiny_model_dir):
    examples = toy_examples(8)
    probs = np.tile([[0.5, 0.5]], (len(examples), 1))  # flat soft labels: any difference comes from the pairs
    cfg = TrainConfig(learning_rate=1e-4, max_steps=2, batch_size=4, temperature=2.0)
    plain, fit = distill_soft_labels(tiny_model_dir, ["neg", "pos"], 32, examples, probs, cfg, seed=0)
    tuned, fit_p = distill_soft_labels(tiny_model_dir, ["neg", "pos"], 32, examples, probs, cfg, seed=0,
                                       pair_examples=examples)
    assert "pairs" not in fit and fit_p["pairs"]["n_pairs"] == 144 and fit_p["pairs"]["steps"] == 9  # ceil(144 / 16)
    tuned_body = tuned.model.base_model.state_dict()
    assert any(not torch.equal(v, tuned_body[k]) for k, v in plain.model.base_model.state_dict().items())
