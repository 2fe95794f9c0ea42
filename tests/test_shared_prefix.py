"""Shared-prefix scoring equals scoring each template alone, and refuses what it cannot share."""
import pytest
import torch

from prompt_models.word_pools import any_words
from prompt_models.backbones import CAUSAL, MASKED, load_language_model, load_tokenizer
from prompt_models.examples import InputExample
from prompt_models.lmbff import mask_log_probs
from prompt_models.patterns import Pattern
from prompt_models.pet import PETModel
from prompt_models.shared_prefix import can_share, shared_prefix_log_probs
from prompt_models.verbalizer import Verbalizer

TEMPLATES = ["{text_a} It was {mask}", "{text_a} All in all, it was {mask}", "{text_a} In one word: {mask}",
             "Question: {text_a} Answer: {mask}"]  # the last shares no text-first start with the others
TEXTS = ["a good film", "the movie was really very boring and not fun at all, a waste of a good evening",
         "", "it was terrible", "i really liked it", "a wonderful story"]


def _models(folder, max_length, templates=TEMPLATES):
    tok, lm = load_tokenizer(str(folder)), load_language_model(str(folder), CAUSAL)
    with torch.no_grad():  # random init attends almost uniformly, blind to positions: sharpen it
        for layer in lm.model.layers:
            layer.self_attn.q_proj.weight.mul_(30)
            layer.self_attn.k_proj.weight.mul_(30)
    words = any_words(tok)
    return [PETModel(lm, tok, Pattern(t), Verbalizer(words), max_length) for t in templates]


@pytest.mark.parametrize("max_length", [64, 24])
def test_shared_prefix_equals_each_template_alone(tiny_causal_dir, max_length):
    models = _models(tiny_causal_dir, max_length)
    examples = [InputExample(t) for t in TEXTS]
    if max_length == 24:  # the long text is cut to fit: the shared start must follow each template's cut
        assert len(models[1].encode(examples[1:2])[0]["input_ids"]) == 24
    assert can_share(models)
    shared = shared_prefix_log_probs(models, examples, batch_size=3)
    for model, got in zip(models, shared):
        alone = mask_log_probs(model, examples, batch_size=2)
        assert got.shape == alone.shape
        torch.testing.assert_close(got, alone, atol=1e-4, rtol=0)


def test_what_cannot_share_is_refused(tiny_causal_dir, tiny_model_dir):
    models = _models(tiny_causal_dir, 32)
    assert not can_share(models[:1])  # one template: nothing to share
    other = _models(tiny_causal_dir, 32, TEMPLATES[:1])  # a second copy of the LM
    assert not can_share([models[0], other[0]])
    tok, lm = load_tokenizer(str(tiny_model_dir)), load_language_model(str(tiny_model_dir), MASKED)
    masked = [PETModel(lm, tok, Pattern(t), Verbalizer(any_words(tok)), 32) for t in TEMPLATES[:2]]
    assert not can_share(masked)  # a masked LM reads the text from both sides


@pytest.mark.parametrize("max_length", [64, 24])
def test_label_words_of_several_tokens_score_as_each_template_alone(tiny_causal_dir, max_length):
    # "sci tech", "not entailment": a word's later tokens continue each template's tail on the shared cache
    from prompt_models.prompt_scorer import PromptScorer
    from prompt_models.shared_prefix import shared_prefix_label_scores

    words = {"pos": ["great", "really good fun"], "neg": ["not good"], "mid": ["so so"]}
    base = _models(tiny_causal_dir, max_length)
    lm, tok = base[0].model, base[0].tokenizer
    models = [PETModel(lm, tok, Pattern(t), Verbalizer(words), max_length) for t in TEMPLATES]
    assert max(len(t) for ws in models[0].head.word_token_ids for t in ws) >= 3
    examples = [InputExample(t) for t in TEXTS]
    assert can_share(models)
    for model, got in zip(models, shared_prefix_label_scores(models, examples, batch_size=4)):
        alone = torch.from_numpy(model.predict_logits(examples, batch_size=2))
        assert got.shape == alone.shape == (len(TEXTS), 3)
        torch.testing.assert_close(got, alone, atol=1e-4, rtol=0)
    # the scorer fills its multi-token scores in one shared pass, and answers with them
    scorer = PromptScorer(lambda t, w: PETModel(lm, tok, Pattern(t), Verbalizer(w), max_length), batch_size=4)
    scorer.prefetch(TEMPLATES, "x", examples, words)
    assert len(scorer._multi) == len(TEMPLATES)
    for model in models:
        got = scorer.label_scores(model.pattern.template, words, "x", examples)
        assert abs(got - model.predict_logits(examples, batch_size=2)).max() < 1e-4
