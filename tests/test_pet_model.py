import numpy as np
import pytest
import torch

from conftest import toy_examples
from prompt_models.examples import InputExample
from prompt_models.patterns import PatternError
from prompt_models.pet import PETModel
from prompt_models.soft_prompts import SoftPromptConfig, SoftPromptError
from prompt_models.training import TrainConfig

VERB = {"pos": ["great", "good"], "neg": ["awful", "bad"]}
TEMPLATE = "{text_a} it was {mask} ."


def fast_cfg(**kw):
    base = dict(learning_rate=3e-3, max_steps=100, batch_size=8, progress=False, mlm_alpha=0.0)
    base.update(kw)
    return TrainConfig(**base)


def test_training_learns_a_separable_task(tiny_model_dir):
    train = toy_examples()
    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32)
    before = model.evaluate(train)["accuracy"]
    fit = model.train_model(train, fast_cfg(), seed=0)
    after = model.evaluate(train)["accuracy"]
    assert after == 1.0, (before, after, fit)
    assert fit["steps"] == 100 and np.isfinite(fit["final_loss"])


def test_label_logits_are_the_verbalizer_reading_of_the_mask_logits(tiny_model_dir):
    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32)
    ex = [InputExample("a good film")]
    batch = model.collate(model.encode(ex))
    with torch.no_grad():
        full = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        vocab_at_mask = full[0, batch["mask_pos"][0]]
        expected = model.head(vocab_at_mask.unsqueeze(0))
    assert np.allclose(model.predict_logits(ex), expected.numpy(), atol=1e-5)


def test_auxiliary_mlm_loss_changes_training(tiny_model_dir):
    train = toy_examples(4)
    unlabeled = [InputExample(t) for t in ["the plot was fun", "the actors ran fast", "a slow film", "i liked the story"]]
    results = []
    for alpha in (0.0, 0.5):
        m = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32)
        m.train_model(train, fast_cfg(max_steps=5, mlm_alpha=alpha), seed=0, unlabeled=unlabeled)
        results.append(m.predict_logits(train))
    assert not np.allclose(results[0], results[1])


def test_auxiliary_mlm_loss_at_masked_positions_equals_the_full_forward_loss(tiny_model_dir):
    """The head runs at the masked positions only; the loss and its gradient are the model's own."""
    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32)
    unlabeled = [InputExample(t) for t in ["the plot was fun and the actors ran fast", "a slow film", "i liked it"]]
    cfg = fast_cfg(mlm_probability=0.3)
    ours = model.auxiliary_lm_loss(unlabeled, cfg, torch.Generator().manual_seed(3))
    ours.backward()
    grad = model.model.get_input_embeddings().weight.grad.clone()
    model.zero_grad()
    # the same masking (same generator seed), scored by the model's full forward with labels
    batch = model.masked_lm_batch(unlabeled, cfg, torch.Generator().manual_seed(3))
    labels = batch["labels"]
    assert (labels != -100).any()
    full = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    full.backward()
    assert torch.allclose(ours, full, atol=1e-5)
    assert torch.allclose(grad, model.model.get_input_embeddings().weight.grad, atol=1e-6)


def test_save_and_load_round_trip(tiny_model_dir, tmp_path):
    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32)
    model.train_model(toy_examples(2), fast_cfg(max_steps=3), seed=0)
    model.save(tmp_path / "m")
    again = PETModel.load(tmp_path / "m")
    exs = toy_examples(2)
    assert np.allclose(model.predict_logits(exs), again.predict_logits(exs), atol=1e-5)
    assert again.pattern.template == TEMPLATE and again.labels == ["pos", "neg"]
    with pytest.raises(FileNotFoundError, match="not a saved PET model"):
        PETModel.load(tmp_path)


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="local paths only"):
        PETModel.from_pretrained(str(tmp_path / "nope"), TEMPLATE, VERB)


@pytest.mark.parametrize("kind", ["prompt_tuning", "p_tuning", "prefix_tuning"])
def test_soft_prompts_train_save_and_load(tiny_model_dir, tmp_path, kind):
    soft = SoftPromptConfig(kind=kind, num_tokens=3)
    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32, soft=soft)
    assert model.pattern.template.startswith("{soft:3}{text_a}")
    train = toy_examples()
    model.train_model(train, fast_cfg(max_steps=80), seed=0)
    assert model.evaluate(train)["accuracy"] >= 0.9
    model.save(tmp_path / kind)
    # the saved prompt holds the prompt's own parameters only, none of the LM's
    saved = torch.load(tmp_path / kind / "soft_prompt.pt")
    assert all(not k.startswith(("layers", "model")) for k in saved)
    assert sum(v.numel() for v in saved.values()) == sum(p.numel() for p in model.soft.parameters())
    again = PETModel.load(tmp_path / kind)
    assert np.allclose(model.predict_logits(train), again.predict_logits(train), atol=1e-5)


def test_soft_tokens_change_the_output_and_positions_follow_the_template(tiny_model_dir):
    soft = SoftPromptConfig(kind="p_tuning", encoder="mlp")
    model = PETModel.from_pretrained(str(tiny_model_dir), "{text_a} {soft:2} {mask} .", VERB, max_length=32, soft=soft)
    enc = model.encode([InputExample("a good film")])[0]
    assert enc["soft_positions"] == [4, 5] and enc["mask_pos"] == 6
    before = model.predict_logits([InputExample("a good film")])
    with torch.no_grad():
        model.soft.embedding.add_(1.0)
    assert not np.allclose(before, model.predict_logits([InputExample("a good film")]))


def test_frozen_model_trains_only_the_prompt(tiny_model_dir):
    soft = SoftPromptConfig(kind="prefix_tuning", num_tokens=2, freeze_model=True)
    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32, soft=soft)
    lm_before = {k: v.clone() for k, v in model.model.state_dict().items()}
    prompt_before = model.soft.embedding.detach().clone()
    model.train_model(toy_examples(2), fast_cfg(max_steps=3), seed=0)
    assert all(torch.equal(v, model.model.state_dict()[k]) for k, v in lm_before.items())
    assert not torch.equal(prompt_before, model.soft.embedding.detach())


def test_soft_placeholder_without_soft_kind_is_refused(tiny_model_dir):
    with pytest.raises(PatternError, match="no soft prompt kind"):
        PETModel.from_pretrained(str(tiny_model_dir), "{soft:2} {text_a} {mask}", VERB)
    with pytest.raises(SoftPromptError):
        SoftPromptConfig(kind="lora")


def test_demonstrations_are_used_in_encoding(tiny_model_dir):
    from prompt_models.demonstrations import DemonstrationSampler, sentence_embeddings

    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=64)
    train = toy_examples()
    plain = model.encode([InputExample("the plot")])[0]["input_ids"]
    embed = lambda exs: sentence_embeddings(model.model, model.tokenizer, exs)  # noqa: E731
    model.demonstrations = DemonstrationSampler(train, model.verbalizer, per_class=1, seed=0, embed=embed)
    with_demo = model.encode([InputExample("the plot")])[0]["input_ids"]
    assert len(with_demo) > len(plain)
    toks = model.tokenizer.convert_ids_to_tokens(with_demo)
    assert "great" in toks and "awful" in toks  # one demonstration per class, with its first label word
    assert model.encode([InputExample("the plot")])[0]["input_ids"] == with_demo  # deterministic
    model.train_model(train, fast_cfg(max_steps=2), seed=0)


def test_lora_trains_adapters_only_and_saves_merged(tiny_model_dir, tmp_path):
    from prompt_models.adapters import LoraSettings

    model = PETModel.from_pretrained(
        str(tiny_model_dir), TEMPLATE, VERB, max_length=32, lora=LoraSettings(enabled=True, r=4, alpha=8)
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    base_before = {n: p.detach().clone() for n, p in model.model.named_parameters() if "lora_" not in n}
    train = toy_examples()
    model.train_model(train, fast_cfg(learning_rate=5e-3, max_steps=200), seed=0)
    assert model.evaluate(train)["accuracy"] >= 0.9
    assert all(torch.equal(p, dict(model.model.named_parameters())[n]) for n, p in base_before.items())
    model.save(tmp_path / "lora")
    again = PETModel.load(tmp_path / "lora")
    assert not any("lora_" in n for n, _ in again.named_parameters())
    assert np.allclose(model.predict_logits(train), again.predict_logits(train), atol=1e-4)
    # the live model keeps training after a save (its adapters were not merged away)
    assert any("lora_" in n for n, _ in model.named_parameters())


def test_masked_lms_whose_head_is_more_than_a_projection_score_like_their_forward(tiny_model_dir, tmp_path):
    """DistilBERT's MLM head has a transform before the projection: the full forward must be used."""
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForMaskedLM

    from prompt_models.patterns import Pattern
    from prompt_models.verbalizer import Verbalizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    torch.manual_seed(0)
    lm = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=1, n_heads=2, hidden_dim=64))
    model = PETModel(lm.eval(), tok, Pattern(TEMPLATE), Verbalizer(VERB), 32)
    ex = [InputExample("a good film")]
    batch = model.collate(model.encode(ex))
    with torch.no_grad():
        full = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0, batch["mask_pos"][0]]
        expected = model.head(full.unsqueeze(0))
    assert np.allclose(model.predict_logits(ex), expected.numpy(), atol=1e-5)


def test_inference_halves_the_batch_when_the_device_runs_out_of_memory(tiny_model_dir, monkeypatch):
    model = PETModel.from_pretrained(str(tiny_model_dir), TEMPLATE, VERB, max_length=32)
    exs = toy_examples(6)
    expected = model.predict_logits(exs, batch_size=4)
    real_forward = model.forward
    sizes = []

    def small_device(batch):  # a device that holds at most 3 rows at a time
        sizes.append(len(batch["input_ids"]))
        if len(batch["input_ids"]) > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real_forward(batch)

    monkeypatch.setattr(model, "forward", small_device)
    assert np.allclose(model.predict_logits(exs, batch_size=12), expected, atol=1e-5)
    assert sizes[:3] == [12, 6, 3] and max(sizes[3:]) == 3


def test_the_optimizer_is_fused_on_cpu_and_steps_as_the_default_loop_does():
    # fused AdamW took a seventh of the Python loop's time per step (train_step_profile.py); same update
    from prompt_models.training import make_optimizer

    torch.manual_seed(0)
    start = [torch.randn(7, 5), torch.randn(5)]
    grads = [torch.randn_like(t) for t in start]
    cfg = TrainConfig(learning_rate=1e-2, max_steps=3)
    fused = [t.clone().requires_grad_() for t in start]
    opt, _ = make_optimizer(fused, cfg, 3)
    assert opt.defaults["fused"] is True
    plain = [t.clone().requires_grad_() for t in start]
    ref = torch.optim.AdamW(plain, lr=1e-2, weight_decay=cfg.weight_decay, foreach=False)
    for _ in range(3):
        for ps, o in ((fused, opt), (plain, ref)):
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            o.step()
    for a, b, s in zip(fused, plain, start):
        assert not torch.equal(a, s) and torch.allclose(a, b, atol=1e-6)
