"""Every input that changes a stored result is part of its cache key: one change, one new key."""
import copy
import dataclasses

import pytest

from conftest import build_tiny_model
from pet_config.loading import config_from_dict
from tasks.classifier_tasks import classifier_key
from tasks.label_tasks import ensemble_key
from tasks.pattern_tasks import logits_file, pattern_model_key
from tasks.records import PatternModelRef, SplitFile
from tasks.search_tasks import score_key


def _split(digest: str) -> SplitFile:
    return SplitFile(f"{digest}.jsonl", digest, 4, f"{digest}.csv")


DATA = {
    "train": _split("train-1"),
    "dev": _split("dev-1"),
    "test": _split("test-1"),
    "unlabeled": _split("unlabeled-1"),
}
TEMPLATE = "{text_a} it was {mask} ."


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("other_bert"), seed=1)  # same shape, other weights


@pytest.fixture()
def cfg(tiny_model_dir, tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na good film,pos\na bad film,neg\n")
    return config_from_dict(
        {
            "model": {"path": str(tiny_model_dir), "max_length": 32},
            "data": {"train": {"path": "train.csv", "text_a": "text"}},
            "patterns": [TEMPLATE],
            "verbalizer": {"label_words": {"pos": ["great"], "neg": ["awful"]}},
            "pet": {"train": {"mlm_alpha": 0.0001}},
        },
        tmp_path,
    ).validate()


def _set(cfg, dotted: str, value):
    cfg = copy.deepcopy(cfg)
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = getattr(node, p)
    setattr(node, last, value)
    return cfg


CONFIG_CHANGES = [
    ("model.max_length", 64),
    ("verbalizer.label_words", {"pos": ["good"], "neg": ["awful"]}),
    ("verbalizer.multi_token", "max"),
    ("pet.train.learning_rate", 0.5),
    ("pet.train.max_steps", 3),
    ("pet.train.batch_size", 2),
    ("pet.train.mlm_alpha", 0.5),
    ("pet.soft_prompt.kind", "prompt_tuning"),
    ("pet.lora.enabled", True),
    ("pet.demonstrations.enabled", True),
    ("pet.demonstrations.per_class", 2),
]


@pytest.mark.parametrize("dotted,value", CONFIG_CHANGES, ids=[c[0] for c in CONFIG_CHANGES])
def test_pattern_model_key_follows_each_setting(cfg, dotted, value):
    assert pattern_model_key(_set(cfg, dotted, value), DATA, TEMPLATE, 1) != pattern_model_key(cfg, DATA, TEMPLATE, 1)


def test_a_disabled_lora_section_leaves_the_key_alone(cfg):
    assert pattern_model_key(_set(cfg, "pet.lora.r", 32), DATA, TEMPLATE, 1) == pattern_model_key(cfg, DATA, TEMPLATE, 1)
    on = _set(cfg, "pet.lora.enabled", True)
    assert pattern_model_key(_set(on, "pet.lora.r", 32), DATA, TEMPLATE, 1) != pattern_model_key(on, DATA, TEMPLATE, 1)


def test_pattern_model_key_follows_model_data_template_seed_and_extra(cfg, other_model):
    base = pattern_model_key(cfg, DATA, TEMPLATE, 1)
    assert pattern_model_key(_set(cfg, "model.path", str(other_model)), DATA, TEMPLATE, 1) != base
    assert pattern_model_key(cfg, dict(DATA, train=_split("train-2")), TEMPLATE, 1) != base
    assert pattern_model_key(cfg, dict(DATA, unlabeled=_split("unlabeled-2")), TEMPLATE, 1) != base
    assert pattern_model_key(cfg, DATA, "{text_a} so {mask} .", 1) != base
    assert pattern_model_key(cfg, DATA, TEMPLATE, 2) != base
    assert pattern_model_key(cfg, DATA, TEMPLATE, 1, extra_digest="ipet-1") != base
    # without the auxiliary LM loss the unlabeled text does not touch the model: same key
    no_mlm = _set(cfg, "pet.train.mlm_alpha", 0.0)
    assert pattern_model_key(no_mlm, dict(DATA, unlabeled=_split("unlabeled-2")), TEMPLATE, 1) == pattern_model_key(
        no_mlm, DATA, TEMPLATE, 1
    )
    # progress bars and the evaluation batch size change nothing stored
    assert pattern_model_key(_set(cfg, "pet.train.progress", False), DATA, TEMPLATE, 1) == base
    assert pattern_model_key(_set(cfg, "pet.train.eval_batch_size", 7), DATA, TEMPLATE, 1) == base


def test_pattern_model_key_follows_the_similarity_encoder_content(cfg, tiny_model_dir, other_model):
    sim = _set(_set(cfg, "pet.demonstrations.enabled", True), "pet.demonstrations.filter", "similarity")
    a = pattern_model_key(_set(sim, "pet.demonstrations.encoder_path", str(tiny_model_dir)), DATA, TEMPLATE, 1)
    b = pattern_model_key(_set(sim, "pet.demonstrations.encoder_path", str(other_model)), DATA, TEMPLATE, 1)
    assert a != b


def test_eval_logits_follow_the_dev_and_test_files():
    assert logits_file("dev", DATA) != logits_file("dev", dict(DATA, dev=_split("dev-2")))
    assert logits_file("test", DATA) != logits_file("test", dict(DATA, test=_split("test-2")))


def test_ensemble_key_follows_models_weighting_and_temperature():
    models = [PatternModelRef(k, f"/w/{k}", f"/w/{k}/model", TEMPLATE, 0, 1, 0, "run") for k in "ab"]
    base = ensemble_key(models, "accuracy", 2.0)
    assert ensemble_key(models[:1], "accuracy", 2.0) != base
    assert ensemble_key(models, "uniform", 2.0) != base
    assert ensemble_key(models, "accuracy", 1.0) != base
    assert ensemble_key(models[::-1], "accuracy", 2.0) == base  # order of the models does not matter


@pytest.mark.parametrize(
    "dotted,value",
    [("pet.temperature", 3.0), ("distill.train.learning_rate", 0.5), ("distill.train.max_steps", 3),
     ("distill.seed", 7), ("model.max_length", 64)],
)
def test_classifier_key_follows_each_setting(cfg, dotted, value):
    assert classifier_key(_set(cfg, dotted, value), "ens", ["s1"]) != classifier_key(cfg, "ens", ["s1"])


def test_classifier_key_follows_ensemble_shards_student_and_labels(cfg, other_model):
    base = classifier_key(cfg, "ens", ["s1"])
    assert classifier_key(cfg, "ens-2", ["s1"]) != base
    assert classifier_key(cfg, "ens", ["s1", "s2"]) != base
    assert classifier_key(_set(cfg, "distill.model_path", str(other_model)), "ens", ["s1"]) != base
    flipped = _set(cfg, "verbalizer.label_words", {"neg": ["awful"], "pos": ["great"]})
    assert classifier_key(flipped, "ens", ["s1"]) != base  # label order is the classifier's output order
    with_train = classifier_key(cfg, "ens", ["s1"], "train-digest-1")  # distill.with_train: the gold-labeled split
    assert with_train != base and classifier_key(cfg, "ens", ["s1"], "train-digest-2") != with_train
    pairs = classifier_key(cfg, "ens", ["s1"], None, "train-digest-1")  # distill.pair_tuning: the pairs' split
    assert pairs not in (base, with_train) and classifier_key(cfg, "ens", ["s1"], None, "train-digest-2") != pairs


@pytest.mark.parametrize(
    "dotted,value", [("model.max_length", 64), ("verbalizer.multi_token", "first")], ids=["max_length", "multi_token"]
)
def test_score_key_follows_each_setting(cfg, dotted, value):
    tc = cfg.label_word_search.train.core()
    words = {"pos": ["great"], "neg": ["awful"]}
    assert score_key(_set(cfg, dotted, value), DATA, TEMPLATE, words, tc, 0) != score_key(cfg, DATA, TEMPLATE, words, tc, 0)


def test_score_key_follows_data_template_words_training_and_seed(cfg):
    tc = cfg.label_word_search.train.core()
    words = {"pos": ["great"], "neg": ["awful"]}
    base = score_key(cfg, DATA, TEMPLATE, words, tc, 0)
    assert score_key(cfg, dict(DATA, dev=_split("dev-2")), TEMPLATE, words, tc, 0) != base
    assert score_key(cfg, dict(DATA, train=_split("train-2")), TEMPLATE, words, tc, 0) != base
    assert score_key(cfg, DATA, "{text_a} so {mask} .", words, tc, 0) != base
    assert score_key(cfg, DATA, TEMPLATE, {"pos": ["good"], "neg": ["awful"]}, tc, 0) != base
    assert score_key(cfg, DATA, TEMPLATE, words, dataclasses.replace(tc, max_steps=99), 0) != base
    assert score_key(cfg, DATA, TEMPLATE, words, tc, 1) != base
