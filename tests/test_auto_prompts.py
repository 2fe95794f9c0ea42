"""Automatic prompts: label words from names, calibration, and selection of a good candidate over a bad one."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from prompt_models import auto_prompts
from prompt_models.auto_prompts import (
    QUESTION_TEMPLATES,
    SINGLE_TEMPLATES,
    calibrate,
    candidate_templates,
    select_prompts,
    stratified_split,
    zero_shot_logits,
)
from prompt_models.word_pools import any_words, text_words
from prompt_models.label_names import codes_among, words_from_label_names
from prompt_models.auto_settings import suggest_train_settings
from pet_config.loading import config_from_dict
from pet_config.schema import ConfigError
from prompt_models.examples import InputExample
from prompt_models.function_words import are_questions

from conftest import toy_examples

GOOD = "{text_a} it was {mask}"
GOOD2 = "{text_a} so it was {mask}"
BLIND = "{text_a} {mask}"  # read through a model that never sees the text: a constant candidate


def test_label_names_that_are_words_become_label_words():
    assert words_from_label_names(["positive", "negative"]) == {"positive": ["positive"], "negative": ["negative"]}
    assert words_from_label_names(["Sci_Tech", "sports"]) == {"Sci_Tech": ["sci tech"], "sports": ["sports"]}
    assert words_from_label_names(["Sci/Tech", "World"]) == {"Sci/Tech": ["sci tech"], "World": ["world"]}
    # words of any script are words (a French or German user's labels), "&" and runs of spaces are one space
    assert words_from_label_names(["négatif", "positif"]) == {"négatif": ["négatif"], "positif": ["positif"]}
    assert words_from_label_names(["Küche", "Gesundheit & Medizin"]) == {"Küche": ["küche"],
                                                                         "Gesundheit & Medizin": ["gesundheit medizin"]}
    assert words_from_label_names(["OfficeHolder", "NLP"]) == {"OfficeHolder": ["office holder"], "NLP": ["nlp"]}
    # short all-capital names are abbreviations unless the task's text uses them as words (TREC's classes)
    trec = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert words_from_label_names(trec) is None and words_from_label_names(["PER", "ORG", "LOC", "MISC"]) is None
    assert words_from_label_names(trec, {"what", "is", "desc", "location"}) is None
    assert words_from_label_names(["LOVE", "JOY"], {"love", "joy", "so"}) == {"LOVE": ["love"], "JOY": ["joy"]}
    assert words_from_label_names(["YES", "NO"]) == {"YES": ["yes"], "NO": ["no"]}
    assert words_from_label_names(["SPORTS", "WORLD"]) == {"SPORTS": ["sports"], "WORLD": ["world"]}
    # a set with a longer capital name is words written in capitals, whatever the text says
    assert words_from_label_names(["HIGH", "MEDIUM", "LOW"]) == {"HIGH": ["high"], "MEDIUM": ["medium"], "LOW": ["low"]}
    assert words_from_label_names(["TRUE", "FALSE"]) == {"TRUE": ["true"], "FALSE": ["false"]}
    # letters with combining marks (Devanagari, Thai, a decomposed accent), short words of scripts without
    # spaces, "no" beside "yes"; CamelCase is split only in a capitalised name
    assert words_from_label_names(["खेल", "राजनीति"]) == {"खेल": ["खेल"], "राजनीति": ["राजनीति"]}
    assert words_from_label_names(["กีฬา", "การเมือง"]) == {"กีฬา": ["กีฬา"], "การเมือง": ["การเมือง"]}
    assert words_from_label_names(["cafe\u0301", "bar"]) == {"cafe\u0301": ["caf\u00e9"], "bar": ["bar"]}
    assert words_from_label_names(["体育", "好"]) == {"体育": ["体育"], "好": ["好"]}
    assert words_from_label_names(["yes", "no"]) == {"yes": ["yes"], "no": ["no"]}
    assert words_from_label_names(["iPhone", "eBay"]) == {"iPhone": ["iphone"], "eBay": ["ebay"]}
    # a path's last name (TREC's fine classes, 20 Newsgroups'), where the text uses it and no sibling shares it
    assert words_from_label_names(["rec.sport.hockey", "comp.graphics"]) == {"rec.sport.hockey": ["hockey"],
                                                                             "comp.graphics": ["graphics"]}
    fine = ["ENTY:animal", "LOC:city", "HUM:ind", "ENTY:other", "LOC:other"]
    used = {"what", "animal", "city", "ind", "other"}
    assert codes_among(fine, used) == {"ENTY:other", "LOC:other"}  # shared by two labels
    assert codes_among(fine, used - {"ind"}) == {"HUM:ind", "ENTY:other", "LOC:other"}  # no word of the text
    assert words_from_label_names(fine[:2], used) == {"ENTY:animal": ["animal"], "LOC:city": ["city"]}
    assert words_from_label_names(fine, used) is None
    for codes in (["0", "1"], ["pos", "neg"], ["LABEL_0", "LABEL_1"], ["a", "b"], ["négatif", "n_2"], ["n/a", "yes"],
                  ["ok", "bad"]):
        assert words_from_label_names(codes) is None, codes


def test_calibration_removes_a_constant_bias():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(200, 3))
    biased = signal + np.array([2.0, 0.0, -1.0])  # the prompt prefers label 0 whatever the text
    raw = (biased.argmax(-1) == signal.argmax(-1)).mean()
    cal = calibrate(biased, biased)
    fixed = (cal.argmax(-1) == signal.argmax(-1)).mean()
    assert raw < 0.5 and fixed > 0.75, (raw, fixed)
    assert np.allclose(np.exp(cal).sum(-1), 1.0, atol=1e-5)


def test_stratified_split_keeps_every_label_on_both_sides():
    fit, held = stratified_split(toy_examples(8), 0.25, seed=0)
    assert {e.label for e in fit} == {e.label for e in held} == {"pos", "neg"}
    assert len(held) == 4 and len(fit) == 12


def test_rule_for_training_settings():
    s = suggest_train_settings(32, 2, 135e6)
    assert s == {"max_steps": 40, "learning_rate": pytest.approx(3e-5), "batch_size": 8}
    assert suggest_train_settings(96, 6, 135e6)["max_steps"] == 64  # capped
    assert suggest_train_settings(8, 2, 135e6)["max_steps"] == 32  # floor
    assert suggest_train_settings(32, 2, 540e6)["learning_rate"] == pytest.approx(1.5e-5)


@pytest.fixture(scope="module")
def trained_factory(tiny_model_dir):
    """A tiny BERT trained on GOOD with great/awful; BLIND reads it with every text blanked."""
    from prompt_models.patterns import Pattern
    from prompt_models.pet import PETModel
    from prompt_models.training import TrainConfig
    from prompt_models.verbalizer import Verbalizer

    words = {"pos": ["great"], "neg": ["awful"]}
    base = PETModel.from_pretrained(str(tiny_model_dir), GOOD, words, 32)
    base.train_model(toy_examples(8), TrainConfig(learning_rate=3e-3, max_steps=60, batch_size=8, mlm_alpha=0.0,
                                                  progress=False), seed=0)

    class Blind(PETModel):
        def encode(self, examples):
            return super().encode([InputExample("the", e.text_b, e.label, e.guid) for e in examples])

    def make(template, label_words):
        cls = Blind if template == BLIND else PETModel
        return cls(base.model, base.tokenizer, Pattern(template), Verbalizer(label_words or any_words(base.tokenizer)), 32)

    return make, words


def test_selection_prefers_the_informative_template_over_a_constant_one(trained_factory):
    make, words = trained_factory
    data = toy_examples(8)
    prior = [InputExample(e.text_a) for e in data]
    res = select_prompts(make, ["pos", "neg"], data, data, prior, [BLIND, GOOD], label_words=words, num_patterns=1)
    assert res.templates == [GOOD]
    by_template = {s["template"]: s["accuracy"] for s in res.template_scores}
    assert by_template[GOOD] >= 0.9
    assert by_template[BLIND] == pytest.approx(0.5)  # one prediction for every text
    z = zero_shot_logits(make, [GOOD], words, data, prior)
    assert (z.argmax(-1) == np.array([0 if e.label == "pos" else 1 for e in data])).mean() >= 0.9


def test_a_template_written_for_the_task_that_zero_shot_passed_over_is_trained_too(trained_factory):
    make, words = trained_factory
    data = toy_examples(8)
    prior = [InputExample(e.text_a) for e in data]
    # the task's own template ranks last zero-shot: with dev it joins the trained candidates
    res = select_prompts(make, ["pos", "neg"], data, data, prior, [GOOD, BLIND], label_words=words,
                         num_patterns=1, task_templates=[BLIND])
    assert res.templates == [GOOD] and res.trained_candidates == [GOOD, BLIND]
    assert res.task_template_swap == {}
    # chosen already, or none written for the task: nothing more to train
    for dev, task in [(data, [GOOD]), (None, [GOOD]), (data, [])]:
        res = select_prompts(make, ["pos", "neg"], data, dev, prior, [GOOD, BLIND], label_words=words,
                             num_patterns=1, task_templates=task)
        assert res.trained_candidates == res.templates == [GOOD] and not res.task_template_swap, (dev is None, task)
    # no dev set to re-rank on: the task's template takes the last chosen place, and the swap is recorded
    for n in (1, 2):
        res = select_prompts(make, ["pos", "neg"], data, None, prior, [GOOD, GOOD2, BLIND], label_words=words,
                             num_patterns=n, task_templates=[BLIND])
        ranked = [s["template"] for s in res.template_scores]
        assert ranked[-1] == BLIND  # last zero-shot, yet in the ensemble
        assert res.templates == ranked[:n - 1] + [BLIND] == res.trained_candidates, n
        assert res.task_template_swap == {"dropped": ranked[n - 1], "added": BLIND}


def test_trained_reranking_keeps_the_best_on_dev_and_the_zero_shot_order_on_ties():
    from flows.auto_stage import keep_best_trained

    assert keep_best_trained(["a", "b", "q"], {"a": 0.70, "b": 0.60, "q": 0.80}, 2) == ["q", "a"]
    assert keep_best_trained(["a", "b", "q"], {"a": 0.70, "b": 0.70, "q": 0.70}, 2) == ["a", "b"]


def test_searched_label_words_for_codes_beat_chance_without_a_dev_set(trained_factory):
    make, _ = trained_factory
    data = [InputExample(e.text_a, None, {"pos": "1", "neg": "0"}[e.label], e.guid) for e in toy_examples(8)]
    prior = [InputExample(e.text_a) for e in data]
    res = select_prompts(make, ["0", "1"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3)
    assert res.selection_split.startswith("train")
    assert set(res.label_words) == {"0", "1"}
    assert res.candidates[0].accuracy == max(c.accuracy for c in res.candidates) >= 0.75
    # searched words are content words of the task's own text
    used = set(text_words([e.text_a for e in data + prior]))  # the texts select_prompts reads
    searched = {w for c in res.candidates if c.words_from == "search" for ws in c.label_words.values() for w in ws}
    assert searched and searched <= used, (searched, used)
    assert res.word_pool.startswith("content words of the text")
    # several words per label: still content words of the text, none said for two labels
    res = select_prompts(make, ["0", "1"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3,
                         words_per_label=3)
    searched = [ws for c in res.candidates if c.words_from == "search" for ws in c.label_words.values()]
    assert any(len(ws) > 1 for ws in searched) and {w for ws in searched for w in ws} <= used
    assert all(not set(c.label_words["0"]) & set(c.label_words["1"]) for c in res.candidates)
    # text none of whose words is one token (a language the tokenizer splits): any next word, and it says so
    pieces = [InputExample(f"qzxv{i % 2}kq wbxjz{i % 2}", None, e.label, e.guid) for i, e in enumerate(data)]
    res = select_prompts(make, ["0", "1"], pieces, None, [InputExample(e.text_a) for e in pieces], [GOOD],
                         num_patterns=1, words_per_template=3)
    assert res.word_pool.startswith("any next word: only 0 of the text's"), res.word_pool


def test_word_label_names_are_the_label_words_unless_search_is_asked_for(trained_factory):
    # AG News, 10 examples, no dev: names scored 0.75 on the 4 held-out examples and ~40 searched sets
    # beside them drew 1.0 by chance ("quarterly"/"pioneer"/"baseball"/"wounds"), test 0.65 after training
    make, _ = trained_factory
    data = [InputExample(e.text_a, None, {"pos": "good", "neg": "bad"}[e.label], e.guid) for e in toy_examples(8)]
    prior = [InputExample(e.text_a) for e in data]
    res = select_prompts(make, ["good", "bad"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3)
    assert res.label_words == {"good": ["good"], "bad": ["bad"]}
    assert {c.words_from for c in res.candidates} == {"label names"}
    both = select_prompts(make, ["good", "bad"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3,
                          search_words="always")
    assert {c.words_from for c in both.candidates} == {"label names", "search"}


def test_names_that_are_words_stay_when_another_label_is_a_code(trained_factory):
    # emotion labels with a "none" class: the names joy/anger were thrown away and all words searched
    make, _ = trained_factory
    data = [InputExample(e.text_a, None, {"pos": "good", "neg": "LABEL_2"}[e.label], e.guid) for e in toy_examples(8)]
    prior = [InputExample(e.text_a) for e in data]
    res = select_prompts(make, ["good", "LABEL_2"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3)
    assert res.candidates and all(c.label_words["good"] == ["good"] for c in res.candidates)
    assert {c.words_from for c in res.candidates} == {"label names + search"}
    assert all(c.label_words["LABEL_2"] != ["good"] for c in res.candidates)  # a searched word, never the name
    # a path label's last name is its word where the text uses it; one it does not is searched (TREC's fine classes)
    paths = {"good": "QUALITY:good", "LABEL_2": "QUALITY:xqz"}
    path_data = [InputExample(e.text_a, None, paths[e.label], e.guid) for e in data]
    res = select_prompts(make, list(paths.values()), path_data, None, prior, [GOOD], num_patterns=1, words_per_template=3)
    assert res.candidates and all(c.label_words["QUALITY:good"] == ["good"] for c in res.candidates)
    assert {c.words_from for c in res.candidates} == {"label names + search"}
    assert all(c.label_words["QUALITY:xqz"] != ["xqz"] for c in res.candidates)
    both = select_prompts(make, ["good", "LABEL_2"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3,
                          search_words="always")
    assert {c.words_from for c in both.candidates} == {"search"}


def test_when_every_searched_set_says_a_name_the_searched_sets_are_ranked(trained_factory, monkeypatch):
    # the search gave the code label the other label's name in every set: writing the names in would leave
    # no candidate, so the searched sets are ranked as they came
    make, _ = trained_factory
    data = [InputExample(e.text_a, None, {"pos": "good", "neg": "LABEL_2"}[e.label], e.guid) for e in toy_examples(8)]
    prior = [InputExample(e.text_a) for e in data]
    collide = {"label_words": {"good": ["bad"], "LABEL_2": ["good"]}}
    monkeypatch.setattr(auto_prompts, "search_label_words", lambda *a, **k: [collide])
    res = select_prompts(make, ["good", "LABEL_2"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3)
    assert res.label_words == collide["label_words"]
    assert {c.words_from for c in res.candidates} == {"search (every set collided with a name)"}


def spy_on_search(monkeypatch, record):
    """Calls ``record(model, kwargs)`` at each label-word search of ``select_prompts``, which then runs as usual."""
    search = auto_prompts.search_label_words

    def spy(model, *args, **kwargs):
        record(model, kwargs)
        return search(model, *args, **kwargs)

    monkeypatch.setattr(auto_prompts, "search_label_words", spy)


def test_a_code_label_searches_outside_the_other_labels_names(trained_factory, monkeypatch):
    # TREC-50: 27 names and 23 codes; every searched set drew some name for a code and was dropped
    from prompt_models.verbalizer import word_token_ids

    make, _ = trained_factory
    data = [InputExample(e.text_a, None, {"pos": "good", "neg": "LABEL_2"}[e.label], e.guid) for e in toy_examples(8)]
    prior = [InputExample(e.text_a) for e in data]
    pools = []

    def record(model, kwargs):
        (good,) = word_token_ids(model.tokenizer, "good", model.head_space_sensitive)
        pools.append(bool((kwargs["logp"][:, good] <= -1e9).all()))

    spy_on_search(monkeypatch, record)
    res = select_prompts(make, ["good", "LABEL_2"], data, None, prior, [GOOD], num_patterns=1, words_per_template=3)
    assert pools and all(pools)  # the name "good" is no word the search may give LABEL_2
    assert {c.words_from for c in res.candidates} == {"label names + search"}


def test_question_templates_join_the_library_only_for_questions():
    questions = ["What country did King Wenceslas rule ?", "Who wrote Hamlet?", "How far is the moon ?  "]
    assert are_questions(questions) and are_questions(questions + ["Name a river."])  # 3 of 4
    assert not are_questions(["a fine film", "what a film !", "Who cares? Not me."]) and not are_questions([])
    assert candidate_templates(False, questions=True) == SINGLE_TEMPLATES + QUESTION_TEMPLATES
    assert candidate_templates(False) == SINGLE_TEMPLATES
    assert not set(QUESTION_TEMPLATES) & set(candidate_templates(True, questions=True))  # pairs: not yet
    mine = "Q: {text_a} A: {mask}"
    assert candidate_templates(False, [mine], questions=True)[0] == mine


def test_label_words_are_searched_among_content_words_of_the_text():
    texts = ["The film was great, great fun", "a dull film", "dull and slow", "with it", "with them", "no", "no 42"]
    # used twice or more; "with" is a function word, "no" an answer word; digits are not words
    assert text_words(texts) == ["film", "great", "dull", "no"]
    assert text_words(texts, min_count=1, exclude=()) == ["film", "great", "dull", "with", "no", "the", "was", "fun",
                                                         "and", "slow", "it", "them"]
    assert text_words(["très bon, très"]) == ["très"]
    # a word keeps its combining marks (Hindi's vowel signs, a decomposed accent): it is not cut into letters
    assert text_words(["फिल्म अच्छी थी", "फिल्म बुरी थी", "cafe\u0301 bon", "caf\u00e9"], exclude=()) == ["फिल्म", "थी", "caf\u00e9"]
    # any language: from 50 texts on, a word in over 30% of them is a function word ("und"), an answer word is not
    german = [f"der Film und {w}" for w in ["gut", "schlecht", "lang", "kurz"] * 15] + ["nicht ein Text"] * 40
    # "der", "film", "und" (60%) and "ein", "text" (40%) left out; "nicht" (40%) is an answer word
    assert text_words(german, exclude=()) == ["nicht", "gut", "schlecht", "lang", "kurz"]
    assert "not" in text_words(["it is not bad"] * 30 + ["a fine film"] * 30, exclude=())  # in 50%, an answer word
    assert "film" in text_words(german[:40], exclude=())  # too few texts to tell: only the list applies


def test_config_without_patterns_or_words_asks_for_labels(tmp_path, tiny_model_dir):
    base = {"model": {"path": str(tiny_model_dir)}, "data": {"train": {"path": "x.csv"}}}
    cfg = config_from_dict(dict(base, labels=["a", "b"]), tmp_path).validate()
    assert cfg.needs_auto_prompts and cfg.auto_prompts.hyperparameters == "rule"
    assert not {"max_steps", "learning_rate"} & cfg.pet.train.model_fields_set  # left to the rule
    with pytest.raises(ConfigError, match="labels"):
        config_from_dict(base, tmp_path).validate()
    written = config_from_dict(dict(base, labels=["a", "b"], pet={"train": {"max_steps": 5}}), tmp_path)
    assert "max_steps" in written.pet.train.model_fields_set  # steps written by the user stay



def test_the_labeled_examples_join_distillation_from_three_labels_unless_the_config_says(tmp_path, tiny_model_dir):
    base = {"model": {"path": str(tiny_model_dir)}, "data": {"train": {"path": "x.csv"}}}
    assert not config_from_dict(dict(base, labels=["a", "b"]), tmp_path).distill.with_train  # PET's recipe
    assert config_from_dict(dict(base, labels=["a", "b", "c"]), tmp_path).distill.with_train
    mine = config_from_dict(dict(base, labels=["a", "b", "c"], distill={"with_train": False}), tmp_path)
    assert mine.distill.with_train is False  # written by the user: kept
    assert config_from_dict(dict(base, labels=["a", "b"], distill={"with_train": True}), tmp_path).distill.with_train
    assert "with_train: true" in yaml.safe_dump(config_from_dict(dict(base, labels=list("abc")), tmp_path).to_dict())


def test_content_continuations_keep_whole_words_that_are_not_stop_words(trained_factory):
    from prompt_models.word_pools import content_words_mask
    from prompt_models.function_words import english
    from prompt_models.verbalizer import word_token_ids

    make, words = trained_factory
    model = make(GOOD, words)
    tok = model.tokenizer
    ids = {w: word_token_ids(tok, w, model.head_space_sensitive)[0] for w in ("great", "awful", "the", "was")}
    piece = next(i for t, i in tok.get_vocab().items() if t.startswith("##") and t[2:].isalpha())
    mask = content_words_mask(model, [*ids.values(), piece], english(), len(tok))
    assert mask[ids["great"]] and mask[ids["awful"]]
    assert not mask[ids["the"]] and not mask[ids["was"]] and not mask[piece]  # stop words and a word piece
    assert int(mask.sum()) == 2


def test_one_example_per_label_without_dev_ranks_on_train(trained_factory):
    # nothing can be held out of one example per label: the selection split was empty and scoring it
    # crashed (IndexError) deep inside `pet run` on a config `pet init` had written
    make, _ = trained_factory
    data = [InputExample("the movie was great", None, "1", "0"), InputExample("awful film", None, "0", "1")]
    prior = [InputExample(e.text_a) for e in data]
    res = select_prompts(make, ["1", "0"], data, None, prior, [GOOD], num_patterns=1, words_per_template=2)
    assert res.selection_split == "train (one example per label: none held out)"
    assert res.templates == [GOOD] and set(res.label_words) == {"1", "0"}
    assert all(0.0 <= c.accuracy <= 1.0 for c in res.candidates)


def test_a_label_of_one_example_without_dev_is_in_the_ranking(trained_factory):
    # 15 "pos" and one "neg": the held-out quarter had no "neg", so the ranking read positives only and a
    # prompt that never says "neg" scored 1.000 (`pet run` printed "calibrated zero-shot 1.000")
    make, words = trained_factory
    pos = [e for e in toy_examples(8) if e.label == "pos"]
    data = pos + [next(e for e in toy_examples(8) if e.label == "neg")]
    prior = [InputExample(e.text_a) for e in data]
    coded = [InputExample(e.text_a, None, {"pos": "1", "neg": "0"}[e.label], e.guid) for e in data]
    res = select_prompts(make, ["1", "0"], coded, None, prior, [BLIND, GOOD], num_patterns=1, words_per_template=2)
    assert res.selection_split.endswith("labels ['0'] have one example, ranked on it too")
    blind = [c.accuracy for c in res.candidates if c.template == BLIND]
    assert blind and all(0.0 < a < 1.0 for a in blind)  # one prediction for every text cannot be right on both labels
    # with the config's words nothing is searched: all of train ranks the templates
    res = select_prompts(make, ["pos", "neg"], data, None, prior, [BLIND, GOOD], label_words=words, num_patterns=1)
    assert res.selection_split == "train (all of it: no label words are searched)"
    assert res.templates == [GOOD] and res.template_scores[0]["accuracy"] == 1.0


@pytest.mark.parametrize("ask", [True, False])
def test_the_choose_prompts_stage_ranks_question_templates_for_questions_only(tmp_path, tiny_model_dir, ask):
    import pandas as pd
    import yaml

    from pet_config.loading import load_config
    from tasks.auto_prompt_tasks import choose_prompts
    from tasks.data_tasks import load_and_validate

    rows = [{"text": e.text_a + (" ?" if ask else ""), "label": {"pos": "1", "neg": "0"}[e.label]}
            for e in toy_examples(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    cfg = {"name": "toy-questions", "labels": ["0", "1"], "model": {"path": str(tiny_model_dir), "max_length": 32},
           "data": {"train": {"path": "train.csv", "text_a": "text"}, "dev": {"path": "train.csv", "text_a": "text"}},
           "patterns": [], "verbalizer": {"label_words": {}},
           "auto_prompts": {"prior_texts": 4, "words_per_template": 1},
           "tracking": {"experiment": "q", "registered_model": "q"}, "work_dir": "work"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    config = load_config(tmp_path / "config.yaml")
    result = choose_prompts.fn(config, load_and_validate.fn(config))
    ranked = {s["template"] for s in result["template_scores"]}
    assert (set(QUESTION_TEMPLATES) <= ranked) is ask and set(SINGLE_TEMPLATES) <= ranked
    # for questions a question template is trained, chosen zero-shot or re-ranked (trained_rerank)
    assert any(t in QUESTION_TEMPLATES for t in result["trained_candidates"]) is ask
    # without a dev set nothing is re-ranked: for questions a question template is among the chosen all the same
    del cfg["data"]["dev"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    config = load_config(tmp_path / "config.yaml")
    result = choose_prompts.fn(config, load_and_validate.fn(config))
    assert result["trained_candidates"] == result["templates"]
    assert any(t in QUESTION_TEMPLATES for t in result["templates"]) is ask
    if result["task_template_swap"]:  # only a question template is swapped in, and only for questions
        assert ask and result["task_template_swap"]["added"] in QUESTION_TEMPLATES


def test_a_stop_reaches_the_label_word_search_between_model_calls(trained_factory):
    """Ctrl-C / SIGTERM sets STOP; the word search runs minutes of tensor arithmetic without a model call
    (50 labels), and a task thread that never polls holds the process after the CLI has unwound."""
    import torch

    from prompt_models.lmbff import search_label_words
    from prompt_models.training import STOP, StopRequested

    make, words = trained_factory
    model = make(GOOD, words)
    data = [InputExample(e.text_a, None, {"pos": "1", "neg": "0"}[e.label], e.guid) for e in toy_examples(8)]
    logp = torch.zeros(len(data), model.tokenizer.vocab_size)  # given: the search makes no model call
    STOP.set()
    try:
        with pytest.raises(StopRequested):
            search_label_words(model, data, ["0", "1"], top_k_per_class=4, logp=logp, max_scan=200)
    finally:
        STOP.clear()
    assert search_label_words(model, data, ["0", "1"], top_k_per_class=4, logp=logp, max_scan=200)


def test_a_large_labeled_set_is_ranked_on_a_sample_per_label(trained_factory, monkeypatch):
    """25,000 labeled reviews without dev (a new-user trial) would have had 6,250 scored per template: the ranking
    takes at most MAX_SCORED_PER_LABEL of each label from each split, and says so."""
    from prompt_models.examples import at_most_per_label

    data = toy_examples(40)
    few = at_most_per_label(data, 3, seed=0)
    assert sorted(e.label for e in few) == ["neg"] * 3 + ["pos"] * 3 and [e for e in data if e in few] == few
    assert at_most_per_label(data, 40) == data  # nothing over the cap: the list as it is
    make, words = trained_factory
    monkeypatch.setattr(auto_prompts, "MAX_SCORED_PER_LABEL", 4)
    scored = []
    monkeypatch.setattr(auto_prompts.PromptScorer, "prefetch",
                        lambda self, templates, name, examples, words: scored.append((name, len(examples))))
    res = select_prompts(make, ["pos", "neg"], data, None, [InputExample(e.text_a) for e in data[:4]], [GOOD],
                         label_words=words, num_patterns=1)
    assert res.selection_split.endswith("; at most 4 examples per label of each (8 of 80 ranked)")
    assert dict(scored)["sel"] == 8 and res.templates == [GOOD]


def test_several_words_per_label_are_the_labels_own_next_best_words(trained_factory):
    """``words_per_label``: each searched word is followed by its label's next top words, and a word the other
    label's examples score higher never joins (it would blur the two labels)."""
    import torch

    from prompt_models.lmbff import search_label_words
    from prompt_models.verbalizer import word_token_ids

    make, words = trained_factory
    model = make(GOOD, words)
    data = [InputExample(e.text_a, None, {"pos": "1", "neg": "0"}[e.label], e.guid) for e in toy_examples(8)]
    ids = {w: word_token_ids(model.tokenizer, w, model.head_space_sensitive) for w in
           ("great", "good", "fine", "awful", "bad", "boring")}
    assert all(len(v) == 1 for v in ids.values()), ids
    tok = {w: v[0] for w, v in ids.items()}
    logp = torch.full((len(data), model.tokenizer.vocab_size), -1e9)
    rows = {lab: [i for i, e in enumerate(data) if e.label == lab] for lab in ("0", "1")}
    # label "1": great > good > fine > boring; label "0": awful > fine > bad > boring, so fine and boring are "0"'s
    for w, score in {"great": -1.0, "good": -2.0, "fine": -3.0, "boring": -5.0}.items():
        logp[rows["1"], tok[w]] = score
    for w, score in {"awful": -1.0, "bad": -2.0, "fine": -1.5, "boring": -4.0}.items():
        logp[rows["0"], tok[w]] = score
    one = search_label_words(model, data, ["0", "1"], top_k_per_class=4, logp=logp, max_scan=50, num_candidates=1)
    three = search_label_words(model, data, ["0", "1"], top_k_per_class=4, logp=logp, max_scan=50, num_candidates=1,
                               words_per_label=3)
    assert one[0]["label_words"] == {"0": ["awful"], "1": ["great"]}
    assert three[0]["label_words"] == {"0": ["awful", "fine", "bad"], "1": ["great", "good"]}
    # (awful, great) and (awful, good) bring the same words, in another order: one candidate, and the next
    distinct = search_label_words(model, data, ["0", "1"], top_k_per_class=4, logp=logp, max_scan=50, num_candidates=3,
                                  words_per_label=3)
    assert len({tuple(frozenset(ws) for ws in c["label_words"].values()) for c in distinct}) == len(distinct) == 3
    # words masked out of the pool (-1e9 for every label) lean to no label, though they fill a long top list
    many = search_label_words(model, data, ["0", "1"], top_k_per_class=8, logp=logp, max_scan=50, num_candidates=1,
                              words_per_label=6)
    assert many[0]["label_words"] == {"0": ["awful", "fine", "bad", "boring"], "1": ["great", "good"]}


def test_task_word_pools_are_searched_for_the_tasks_templates_only(trained_factory, monkeypatch):
    # the question-words design check: a pool for the task's own templates leaves the library's search as it was
    make, _ = trained_factory
    data = [InputExample(e.text_a, None, {"pos": "LABEL_1", "neg": "LABEL_2"}[e.label], e.guid) for e in toy_examples(8)]
    prior = [InputExample(e.text_a) for e in data]
    calls = []
    spy_on_search(monkeypatch, lambda model, kwargs: calls.append(model.pattern.template))
    select_prompts(make, ["LABEL_1", "LABEL_2"], data, data, prior, [GOOD, GOOD2], num_patterns=1,
                   word_pools=("text",), task_templates=[GOOD2], task_word_pools=("any-continuations",))
    assert calls.count(GOOD) == 1 and calls.count(GOOD2) == 2
