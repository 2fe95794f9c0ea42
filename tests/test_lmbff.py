import pytest

from conftest import build_tiny_gpt2, toy_examples
from prompt_models.lmbff import GeneratorError, parse_seq2seq, generate_templates, load_generator, search_label_words
from prompt_models.examples import InputExample
from prompt_models.patterns import Pattern
from prompt_models.pet import PETModel
from prompt_models.verbalizer import Verbalizer

VERB = Verbalizer({"pos": ["great"], "neg": ["awful"]})


def test_parse_fills_between_sentinels():
    assert parse_seq2seq("<pad> <extra_id_0> it was <extra_id_1> . <extra_id_2> junk") == ("it was", ".")
    assert parse_seq2seq("all in all <extra_id_1> !") == ("all in all", "!")
    assert parse_seq2seq("<extra_id_0> <extra_id_1> <extra_id_2>") is None
    assert parse_seq2seq("<extra_id_0> a {b} [SEP]") == ("a b", "")


def test_t5_generator_finds_the_template_it_was_taught(tiny_t5_dir):
    gen = load_generator(str(tiny_t5_dir))
    assert gen.kind == "seq2seq"
    found = generate_templates(gen, toy_examples(4), VERB, num_candidates=3, beam_width=4, max_new_tokens=8)
    assert found[0]["template"] == "{text_a} it was {mask} ."
    assert [f["score"] for f in found] == sorted((f["score"] for f in found), reverse=True)
    for f in found:
        Pattern(f["template"])  # every candidate is a usable pattern


def test_causal_generator_gives_usable_templates(tmp_path):
    gen = load_generator(str(build_tiny_gpt2(tmp_path / "gpt2")))
    assert gen.kind == "causal"
    found = generate_templates(gen, toy_examples(2), VERB, num_candidates=3, beam_width=3, max_new_tokens=3)
    assert found, "no candidate"
    for f in found:
        assert Pattern(f["template"]).template.startswith("{text_a} ") and f["template"].endswith("{mask} .")


def test_missing_generator_path_is_refused(tmp_path):
    with pytest.raises(GeneratorError, match="not a local model folder"):
        load_generator(str(tmp_path / "missing"))


def test_seq2seq_without_sentinels_is_refused(tmp_path, tiny_t5_dir, tiny_tokenizer):
    import shutil

    folder = tmp_path / "t5_plain_tok"
    shutil.copytree(tiny_t5_dir, folder)
    for f in folder.glob("tokenizer*"):
        f.unlink()
    tiny_tokenizer.save_pretrained(folder)  # a tokenizer without <extra_id_N>
    with pytest.raises(GeneratorError, match="sentinel"):
        load_generator(str(folder))


def test_label_word_search_ranks_by_zero_shot_accuracy(tiny_model_dir):
    exs = toy_examples()
    model = PETModel.from_pretrained(str(tiny_model_dir), "{text_a} it was {mask} .", VERB, max_length=32)
    cands = search_label_words(model, exs, ["pos", "neg"], top_k_per_class=4, num_candidates=5)
    assert 1 <= len(cands) <= 5
    accs = [c["zero_shot_accuracy"] for c in cands]
    assert accs == sorted(accs, reverse=True)
    for c in cands:
        words = [w[0] for w in c["label_words"].values()]
        assert len(set(words)) == 2 and all(not w.startswith("##") for w in words)
        # the recorded accuracy is what the model scores with that verbalizer
        check = PETModel(model.model, model.tokenizer, model.pattern, Verbalizer(c["label_words"]), 32)
        assert check.evaluate(exs)["accuracy"] == pytest.approx(c["zero_shot_accuracy"])


def test_vocabulary_scores_keep_input_order_whatever_the_batching(tmp_path):
    """mask_log_probs runs length-sorted batches (the one inference routine) and returns rows in input order."""
    import torch

    from prompt_models.lmbff import mask_log_probs

    model = PETModel.from_pretrained(str(build_tiny_gpt2(tmp_path)), "{text_a} it was {mask}", VERB, max_length=32)
    examples = toy_examples(4)  # texts of different lengths, so sorting reorders them
    one_by_one = torch.cat([mask_log_probs(model, [ex], 1) for ex in examples])
    batched = mask_log_probs(model, examples, 3)
    assert batched.shape == one_by_one.shape and batched.shape[0] == len(examples)
    assert torch.allclose(batched, one_by_one, atol=1e-4)


def test_label_word_search_with_many_labels_samples_instead_of_looping_forever(tiny_model_dir, monkeypatch):
    # 8 words for each of 22 labels: numpy's int64 product of the counts wrapped to 0, so the search took the
    # exhaustive branch over 8**22 combinations and `pet run` on TREC's 50 fine classes never left auto-prompts
    from types import SimpleNamespace

    import torch

    import prompt_models.lmbff as lmbff

    def product(*lists):  # the exhaustive branch fails when it is iterated instead of running for ever
        raise AssertionError(f"exhaustive loop over {[len(x) for x in lists]} words")
        yield

    monkeypatch.setattr(lmbff, "itertools", SimpleNamespace(product=product))
    labels = [f"c{i}" for i in range(22)]
    exs = [InputExample(ex.text_a, label=labels[i % 22], guid=str(i)) for i, ex in enumerate(toy_examples(11))]
    model = PETModel.from_pretrained(str(tiny_model_dir), "{text_a} it was {mask} .", VERB, max_length=32)
    words = [t for t in range(len(model.tokenizer)) if lmbff._single_token_word(model.tokenizer, t, False)]
    # label i prefers the i-th to (i+7)-th words: 22 labels share 29 words, as the top words of many labels overlap
    logp = torch.full((len(exs), len(model.tokenizer)), -20.0)
    for j, ex in enumerate(exs):
        start = labels.index(ex.label)
        logp[j, [words[(start + k) % len(words)] for k in range(8)]] = -torch.arange(1.0, 9.0)
    cands = search_label_words(model, exs, labels, top_k_per_class=8, num_candidates=3, max_combinations=200,
                               logp=logp)
    assert len(cands) == 3  # independent draws repeated a word in nearly every sample: none was kept
    for c in cands:
        assert set(c["label_words"]) == set(labels) and len({w[0] for w in c["label_words"].values()}) == 22
