import random

import numpy as np
import pytest

from prompt_models.ipet import (
    added_examples_count,
    build_generation_sets,
    label_distribution,
    pick_teachers,
    select_pseudo_labeled,
)


def test_teachers_never_include_the_student():
    rng = random.Random(0)
    for student in range(5):
        t = pick_teachers(5, student, 0.5, rng)
        assert student not in t and len(t) == 2
    assert pick_teachers(3, 0, 0.0, rng) in ([1], [2])  # at least one teacher
    with pytest.raises(ValueError, match="two models"):
        pick_teachers(1, 0, 0.5, rng)


def test_training_set_grows_by_the_factor_each_generation():
    assert added_examples_count(32, 1, 5) == 32 * 5 - 32
    assert added_examples_count(32, 2, 5) == 32 * 25 - 32
    # labeled + added = |T| * 5^g
    assert 32 + added_examples_count(32, 3, 5) == 32 * 125


def test_selection_keeps_label_ratio_and_predicted_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 2)) * 3
    idx, labs = select_pseudo_labeled(logits, 100, {0: 0.25, 1: 0.75}, rng)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert (labs == 0).sum() == 25 and (labs == 1).sum() == 75
    assert np.array_equal(logits[idx].argmax(-1), labs)


def test_selection_prefers_confident_examples():
    logits = np.zeros((200, 2))
    logits[:100, 0] = 8.0  # very confident class 0
    logits[100:, 0] = 0.01  # barely class 0
    idx, _ = select_pseudo_labeled(logits, 20, {0: 1.0}, np.random.default_rng(0))
    assert (idx < 100).mean() > 0.5


def test_generation_sets_for_every_model():
    rng = np.random.default_rng(1)
    logits = [rng.normal(size=(300, 3)) for _ in range(4)]
    gold = [0, 1, 2, 0, 1, 2]
    sets = build_generation_sets(logits, [0.5, 0.4, 0.0, 0.3], gold, generation=1, factor=5, fraction=0.5, seed=0)
    assert len(sets) == 4
    for j, (teachers, idx, labs) in enumerate(sets):
        assert j not in teachers and len(teachers) == 2
        assert len(idx) == 24  # 6 * 5 - 6
        assert label_distribution(labs.tolist()) == pytest.approx({0: 1 / 3, 1: 1 / 3, 2: 1 / 3})
