import pytest
import torch

from prompt_models.examples import InputExample
from prompt_models.patterns import Pattern, PatternEncoder, PatternError
from prompt_models.verbalizer import Verbalizer, VerbalizerError, VerbalizerHead


@pytest.mark.parametrize(
    "template, message",
    [
        ("{text_a} it was great .", "exactly once"),
        ("{text_a} {mask} {mask}", "exactly once"),
        ("{text_a} {label} {mask}", "unknown placeholder"),
        ("it was {mask} .", "must contain {text_a}"),
        ("   ", "empty"),
        ("{text_a} {mask:2}", "takes no count"),
        ("{text_a} {mask} {oops", "malformed"),
    ],
)
def test_bad_templates_are_refused_with_a_reason(template, message):
    with pytest.raises(PatternError, match=message):
        Pattern(template)


def test_encoding_places_one_mask_and_keeps_it_under_truncation(tiny_tokenizer):
    enc = PatternEncoder(tiny_tokenizer, max_length=12)
    pat = Pattern("{text_a} it was {mask} .")
    long_text = " ".join(["the movie"] * 30)
    out = enc.encode(pat, InputExample(long_text))
    ids = out["input_ids"]
    assert len(ids) == 12
    assert ids[out["mask_pos"]] == tiny_tokenizer.mask_token_id
    assert ids.count(tiny_tokenizer.mask_token_id) == 1
    assert ids[0] == tiny_tokenizer.cls_token_id and ids[-1] == tiny_tokenizer.sep_token_id
    # the literal part survives whole: "it was [MASK] ."
    tail = tiny_tokenizer.convert_ids_to_tokens(ids[-5:-1])
    assert tail == ["it", "was", "[MASK]", "."]


def test_text_b_and_longest_first_truncation(tiny_tokenizer):
    enc = PatternEncoder(tiny_tokenizer, max_length=14)
    pat = Pattern("{text_a} ? {mask} , {text_b}")
    out = enc.encode(pat, InputExample("the cat " * 10, "a dog"))
    toks = tiny_tokenizer.convert_ids_to_tokens(out["input_ids"])
    assert toks[-3:] == ["a", "dog", "[SEP]"]  # the short text is kept, the long one cut
    with pytest.raises(PatternError, match="uses {text_b}"):
        enc.encode(pat, InputExample("the cat"))


def test_template_longer_than_max_length_is_an_error(tiny_tokenizer):
    enc = PatternEncoder(tiny_tokenizer, max_length=6)
    with pytest.raises(PatternError, match="alone needs"):
        enc.encode(Pattern("{text_a} the movie was really very {mask} ."), InputExample("good"))


def test_demonstrations_follow_the_query_within_budget(tiny_tokenizer):
    enc = PatternEncoder(tiny_tokenizer, max_length=40)
    pat = Pattern("{text_a} it was {mask} .")
    demos = [(InputExample("a good film"), "great"), (InputExample("a bad film"), "terrible")]
    out = enc.encode(pat, InputExample("the plot"), demos)
    toks = tiny_tokenizer.convert_ids_to_tokens(out["input_ids"])
    assert toks.count("[MASK]") == 1 and toks.index("[MASK]") == out["mask_pos"]
    text = " ".join(toks)
    assert "a good film it was great . [SEP] a bad film it was terrible . [SEP]" in text
    assert len(out["input_ids"]) <= 40


def test_verbalizer_validation():
    with pytest.raises(VerbalizerError, match="at least one non-empty word"):
        Verbalizer({"pos": [], "neg": ["bad"]})
    with pytest.raises(VerbalizerError, match="two labels"):
        Verbalizer({"pos": ["good"]})
    with pytest.raises(VerbalizerError, match="multi_token"):
        Verbalizer({"pos": ["good"], "neg": ["bad"]}, multi_token="sum")


def test_unknown_word_is_refused(tiny_tokenizer):
    with pytest.raises(VerbalizerError, match="unknown to the tokenizer"):
        VerbalizerHead(Verbalizer({"pos": ["zebra"], "neg": ["bad"]}), tiny_tokenizer)


@pytest.mark.parametrize("mode", ["mean", "first", "max"])
def test_multi_token_and_multi_word_scores(tiny_tokenizer, mode):
    # "wonderful" is one token; "goodly" is two tokens ("good", "##ly"); neg has two words
    verb = Verbalizer({"pos": ["goodly"], "neg": ["bad", "awful"]}, multi_token=mode)
    head = VerbalizerHead(verb, tiny_tokenizer)
    assert head.is_multi_token
    vocab = tiny_tokenizer.get_vocab()
    logits = torch.randn(3, len(vocab))
    out = head(logits)
    good, ly, bad, awful = (vocab[w] for w in ("good", "##ly", "bad", "awful"))
    pos_expected = {
        "mean": (logits[:, good] + logits[:, ly]) / 2,
        "first": logits[:, good],
        "max": torch.maximum(logits[:, good], logits[:, ly]),
    }[mode]
    assert torch.allclose(out[:, 0], pos_expected, atol=1e-6)
    assert torch.allclose(out[:, 1], (logits[:, bad] + logits[:, awful]) / 2, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_batched_encoding_gives_the_ids_of_one_at_a_time(tiny_tokenizer, tiny_causal_dir, causal, side, monkeypatch):
    """encode_all tokenizes texts in one batch call: same ids, positions and truncation as encode."""
    from transformers import AutoTokenizer

    from prompt_models import patterns

    tok = AutoTokenizer.from_pretrained(tiny_causal_dir) if causal else tiny_tokenizer
    monkeypatch.setattr(tok, "truncation_side", side)  # "left" must not cut the start of a text
    monkeypatch.setattr(patterns, "ENCODE_CHUNK", 3)  # chunk boundaries inside the example list
    enc = PatternEncoder(tok, max_length=40, causal=causal)
    templates = ["{text_a} it was {mask}", "Review: {text_a}\n{text_b} Verdict: {mask}"]
    if not causal:
        templates += ["{mask} ! {text_a} {text_b} .", "{text_a}{text_b} it was {mask} ."]
    examples = [InputExample("the movie was great", "a dog"), InputExample("bad " * 20, "the cat " * 9),
                InputExample("", "x"), InputExample("i really liked it", "the movie was great"),
                InputExample("the movie was great " * 15, "a dog"),  # one text alone longer than max_length
                InputExample("the plot " * 30, "the cat ran " * 20)]  # both longer than max_length
    assert len(tok.encode(examples[4].text_a, add_special_tokens=False)) > 40
    demos = lambda ex: [(InputExample("a good film", "a dog"), "great")]  # noqa: E731
    for template in templates:
        pat = Pattern(template)
        for demo_fn in (None, demos):
            batched = enc.encode_all(pat, examples, demo_fn)
            one_by_one = [enc.encode(pat, ex, demo_fn(ex) if demo_fn else None) for ex in examples]
            assert batched == one_by_one, template
        # every query text came from the one batch call: no per-text tokenizer call left
        calls = []
        encode = enc.tokenizer.encode
        enc.tokenizer.encode = lambda *a, **k: calls.append(a) or encode(*a, **k)
        try:
            enc.encode_all(pat, examples)
        finally:
            enc.tokenizer.encode = encode
        assert calls == [], template
    assert enc.batch_ids == {}  # nothing kept between calls
