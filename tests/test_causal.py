"""PET on a causal LM: a tiny Llama with a byte-level BPE tokenizer built in code (conftest)."""
import numpy as np
import pytest
import torch

from conftest import toy_examples
from prompt_models.adapters import LoraSettings
from prompt_models.backbones import BackboneError, backbone_kind
from prompt_models.demonstrations import DemonstrationSampler
from prompt_models.examples import InputExample
from prompt_models.lmbff import search_label_words
from prompt_models.patterns import PatternError
from prompt_models import causal_words
from prompt_models.causal_words import croppable_cache
from prompt_models.pet import PETModel
from prompt_models.soft_prompts import SoftPromptConfig
from prompt_models.training import TrainConfig
from prompt_models.verbalizer import Verbalizer, word_token_ids

TEMPLATE = "{text_a} it was {mask}"
# "wonderful" and "terrible" are several BPE tokens in the tiny vocabulary; "great"/"awful" are one
VERB = {"pos": ["great", "wonderful"], "neg": ["awful", "terrible"]}


def fast_cfg(**kw):
    base = dict(learning_rate=3e-3, max_steps=60, batch_size=8, progress=False, mlm_alpha=0.0)
    base.update(kw)
    return TrainConfig(**base)


def test_kind_is_read_from_the_config(tiny_causal_dir, tiny_model_dir, tmp_path):
    assert backbone_kind(tiny_causal_dir) == "causal"
    assert backbone_kind(tiny_model_dir) == "masked"
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16)).save_pretrained(tmp_path / "enc")
    with pytest.raises(BackboneError, match="no language-model head"):
        backbone_kind(tmp_path / "enc")


def _sequence_log_prob(model, prefix_ids: list[int], word_ids: list[int]) -> float:
    """log p(word | prefix) by one plain full forward pass: the reference the scorer must equal."""
    ids = torch.tensor([prefix_ids + word_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    n = len(prefix_ids)
    return float(sum(logp[n - 1 + j, t] for j, t in enumerate(word_ids)))


@pytest.mark.parametrize("cache", ["cut back", "none"])
def test_multi_token_word_scores_are_the_summed_token_log_probs(tiny_causal_dir, monkeypatch, cache):
    if cache == "none":  # a backbone whose cache cannot be cut back (recurrent layers): the word rides along
        monkeypatch.setattr(causal_words, "croppable_cache", lambda lm, width: None)
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=32)
    tok = pet.tokenizer
    multi = [w for ws in VERB.values() for w in ws if len(word_token_ids(tok, w, True)) > 1]
    assert multi, "the test needs multi-token words"
    # rows of different lengths in one batch: right padding must not leak into the scores
    examples = [InputExample("a good film"), InputExample("the movie was really very boring and not fun")]
    with torch.no_grad():
        scores = pet.forward(pet.collate(pet.encode(examples))).numpy()
    for row, ex in enumerate(examples):
        prefix = pet.encode([ex])[0]["input_ids"]
        for li, label in enumerate(pet.labels):
            expected = np.mean([_sequence_log_prob(pet.model, prefix, word_token_ids(tok, w, True)) for w in VERB[label]])
            assert scores[row, li] == pytest.approx(expected, abs=1e-4)


def test_a_cache_is_cut_back_only_where_every_layer_allows_it():
    from transformers import LlamaConfig, Lfm2Config, MistralConfig

    class LM:  # croppable_cache reads only the config
        def __init__(self, config):
            self.config = config

    assert croppable_cache(LM(LlamaConfig(num_hidden_layers=2)), 4096) is not None
    window = LM(MistralConfig(num_hidden_layers=2, sliding_window=16))
    assert croppable_cache(window, 15) is not None
    assert croppable_cache(window, 16) is None  # the window is full: cut-off tokens are gone
    assert croppable_cache(LM(Lfm2Config(num_hidden_layers=2, layer_types=["conv", "full_attention"])), 8) is None


def test_multi_token_word_gradients_flow_through_the_cached_pattern(tiny_causal_dir):
    # training backpropagates through the word tails run on the pattern's key/value cache: the gradient
    # must be that of the plain full-forward score
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=32)
    tok, ex = pet.tokenizer, InputExample("the movie was really very boring")
    prefix, word = pet.encode([ex])[0]["input_ids"], word_token_ids(tok, "terrible", True)
    weight = pet.model.get_input_embeddings().weight
    scores = pet.forward(pet.collate(pet.encode([ex])))
    (got,) = torch.autograd.grad(scores[0, pet.labels.index("neg")], weight)
    logp = torch.log_softmax(pet.model(input_ids=torch.tensor([prefix + word])).logits[0].float(), -1)
    n = len(prefix)
    ref = sum(logp[n - 1 + j, t] for j, t in enumerate(word))
    ref = (ref + logp[n - 1, word_token_ids(tok, "awful", True)[0]]) / 2  # the label's mean over its two words
    (want,) = torch.autograd.grad(ref, weight)
    assert torch.allclose(got, want, atol=1e-5)


def test_the_word_follows_the_pattern_with_its_space(tiny_causal_dir):
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=32)
    enc = pet.encode([InputExample("a good film")])[0]
    whole = pet.tokenizer.encode(" a good film it was great", add_special_tokens=False)
    # the pattern's ids followed by the word's ids are exactly how the full sentence tokenizes
    assert enc["input_ids"] + word_token_ids(pet.tokenizer, "great", True) == whole
    assert enc["mask_pos"] == len(enc["input_ids"]) - 1


def test_text_after_the_mask_is_refused_for_a_causal_lm(tiny_causal_dir):
    pet = PETModel.from_pretrained(str(tiny_causal_dir), "Just {mask} ! {text_a}", VERB, max_length=32)
    with pytest.raises(PatternError, match="must end the template"):
        pet.encode([InputExample("a good film")])
    PETModel.from_pretrained(str(tiny_causal_dir), "{text_a} it was {mask}  ", VERB, max_length=32).encode(
        [InputExample("fine")]
    )  # trailing whitespace is harmless


def test_training_learns_and_round_trips(tiny_causal_dir, tmp_path):
    train = toy_examples()
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=32)
    unlabeled = [InputExample(t) for t in ["the plot was fun", "a slow film", "i liked the story"]]
    pet.train_model(train, fast_cfg(mlm_alpha=0.1), seed=0, unlabeled=unlabeled)
    assert pet.evaluate(train)["accuracy"] == 1.0
    pet.save(tmp_path / "m")
    again = PETModel.load(tmp_path / "m")
    assert again.causal and np.allclose(pet.predict_logits(train), again.predict_logits(train), atol=1e-4)


def test_auxiliary_lm_loss_is_the_next_token_loss_on_the_wrapped_text(tiny_causal_dir):
    """With mlm_alpha=1 the first step's loss is the auxiliary loss alone: the mean over every
    pattern-wrapped unlabeled token t >= 1 of -log p(token t | tokens < t), computed here by hand
    with one plain forward pass per text (no padding). Texts of different lengths share the batch."""
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=32)
    unlabeled = [InputExample(t) for t in ["the plot was fun", "a slow film", "the actors ran fast and it was really very good"]]
    nll, count = 0.0, 0
    for ex in unlabeled:
        ids = pet.encode([ex])[0]["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(pet.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        nll -= float(sum(logp[t - 1, ids[t]] for t in range(1, len(ids))))
        count += len(ids) - 1
    cfg = fast_cfg(max_steps=1, mlm_alpha=1.0, unlabeled_batch_size=len(unlabeled))
    loss = pet.train_model(toy_examples(4), cfg, seed=0, unlabeled=unlabeled)["final_loss"]
    assert loss == pytest.approx(nll / count, abs=1e-4)


@pytest.mark.parametrize("kind", ["prompt_tuning", "p_tuning", "prefix_tuning"])
def test_soft_prompts_on_a_causal_lm(tiny_causal_dir, tmp_path, kind):
    soft = SoftPromptConfig(kind=kind, num_tokens=3)
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=32, soft=soft)
    train = toy_examples()
    pet.train_model(train, fast_cfg(max_steps=60), seed=0)
    assert pet.evaluate(train)["accuracy"] >= 0.9
    pet.save(tmp_path / kind)
    again = PETModel.load(tmp_path / kind)
    assert np.allclose(pet.predict_logits(train), again.predict_logits(train), atol=1e-4)


def test_lora_on_a_causal_lm(tiny_causal_dir, tmp_path):
    # a random 2-layer model needs adapters on the MLP too to separate the task within a few steps
    lora = LoraSettings(enabled=True, r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"])
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, {"pos": ["great"], "neg": ["awful"]}, 32, lora=lora)
    trainable = {n for n, p in pet.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    train = toy_examples()
    pet.train_model(train, fast_cfg(learning_rate=2e-2, max_steps=100), seed=0)
    assert pet.evaluate(train)["accuracy"] >= 0.9
    pet.save(tmp_path / "lora")
    again = PETModel.load(tmp_path / "lora")
    assert np.allclose(pet.predict_logits(train), again.predict_logits(train), atol=1e-4)
    # multi-token words through the adapter-wrapped model's key/value cache
    multi = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, 32, lora=lora)
    multi.train_model(train, fast_cfg(learning_rate=2e-2, max_steps=2), seed=0)
    assert np.isfinite(multi.predict_logits(train)).all()


def test_demonstrations_come_before_the_query(tiny_causal_dir):
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=64)
    train = toy_examples(2)
    query = InputExample("i liked the plot")
    alone = pet.encode([query])[0]["input_ids"]
    pet.demonstrations = DemonstrationSampler(train, pet.verbalizer, per_class=1, seed=0)
    enc = pet.encode([query])[0]
    assert enc["input_ids"][-len(alone):] == alone and len(enc["input_ids"]) > len(alone)
    assert enc["mask_pos"] == len(enc["input_ids"]) - 1
    text = pet.tokenizer.decode(enc["input_ids"])
    assert "it was great" in text and "it was awful" in text  # each demonstration carries its word
    pet.train_model(toy_examples(), fast_cfg(max_steps=80), seed=0)
    assert pet.evaluate(toy_examples())["accuracy"] >= 0.9


def test_bpe_label_word_search_round_trips_to_the_verbalizer(tiny_causal_dir):
    pet = PETModel.from_pretrained(str(tiny_causal_dir), TEMPLATE, VERB, max_length=32)
    exs = toy_examples()
    cands = search_label_words(pet, exs, ["pos", "neg"], top_k_per_class=4, num_candidates=5)
    assert cands
    for c in cands:
        for (word,) in c["label_words"].values():
            ids = word_token_ids(pet.tokenizer, word, True)
            # one token, and that token is a space-prefixed whole word of the byte-level vocabulary
            assert len(ids) == 1 and pet.tokenizer.convert_ids_to_tokens(ids)[0] == "Ġ" + word
        check = PETModel(pet.model, pet.tokenizer, pet.pattern, Verbalizer(c["label_words"]), 32)
        assert check.evaluate(exs)["accuracy"] == pytest.approx(c["zero_shot_accuracy"])


def test_vocab_logits_at_one_position_equal_the_full_forward_in_float32_and_bf16(tiny_causal_dir):
    from prompt_models.backbones import CAUSAL, load_language_model, vocab_logits_at

    model = load_language_model(tiny_causal_dir, CAUSAL).eval()
    ids = torch.tensor([[5, 9, 17, 30, 2]])
    for dtype in (torch.float32, torch.bfloat16):  # bf16: a model cast for labeling on a GPU
        model = model.to(dtype)
        with torch.inference_mode():
            full = model(input_ids=ids).logits[0, -1].float()
            hidden = model.model(input_ids=ids).last_hidden_state[0, -1]
            logits = vocab_logits_at(model, hidden.float())  # hidden states of another dtype than the head's
        assert logits.dtype == torch.float32 and logits.shape == full.shape
        assert torch.allclose(logits, full, atol=1e-5 if dtype == torch.float32 else 0.0)
    model.config.final_logit_softcapping = 0.5  # Gemma's soft-capping bounds the logits
    with torch.inference_mode():
        assert vocab_logits_at(model, hidden.float()).abs().max() <= 0.5
