import pytest
import torch

from prompt_models.data import InputExample
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
