"""bf16 soft-labeling on a CPU is kept only where it keeps the fp32 labels (prompt_models/label_precision.py)."""
import numpy as np
import torch

from conftest import toy_examples
from prompt_models import label_precision
from prompt_models.label_precision import MIN_ROWS_FOR_BF16, SAMPLE_TEXTS, choose


class RoundingModel:
    """A stand-in pattern model whose labels in bf16 differ from fp32's on ``flips`` of every 100 texts."""

    def __init__(self, flips: int, lora_trained: bool = True):
        self.model = torch.nn.Linear(2, 2)
        self.flips, self.lora_trained, self.calls = flips, lora_trained, []

    @property
    def device(self):
        return torch.device("cpu")

    def predict_logits(self, examples, batch_size=64):
        bf16 = self.model.weight.dtype == torch.bfloat16
        self.calls.append("bf16" if bf16 else "fp32")
        label = np.array([int(bf16 and i % 100 < self.flips) for i in range(len(examples))])
        return np.eye(2)[label]


def test_bf16_is_kept_where_it_keeps_the_labels_and_refused_where_it_moves_them():
    sample = list(range(SAMPLE_TEXTS))
    kept, choice, logits = choose(m := RoundingModel(flips=0), sample, 64, "auto", rows=1000, bf16_cpu=True)
    assert choice.precision == "bf16" and choice.agreement == 1.0 and kept.calls == ["fp32", "bf16"]  # fp32, then the copy
    assert kept is not m and kept.model.weight.dtype == torch.bfloat16  # a copy: the fp32 model is untouched
    assert m.model.weight.dtype == torch.float32
    assert logits.shape == (SAMPLE_TEXTS, 2) and (logits.argmax(-1) == 0).all()  # the bf16 copy's, for the caller

    refused, choice, logits = choose(m := RoundingModel(flips=3), sample, 64, "auto", rows=1000, bf16_cpu=True)
    assert choice.precision == "fp32" and choice.agreement < label_precision.MIN_AGREEMENT
    assert refused is m and m.model.weight.dtype == torch.float32
    assert "changes more than 1% of the labels" in choice.line()
    assert (logits.argmax(-1) == 0).all()  # fp32's: what the texts are labeled with


def test_auto_tries_bf16_only_for_a_lora_model_on_a_bf16_cpu_with_enough_texts():
    sample = list(range(SAMPLE_TEXTS))
    cases = [
        (dict(requested="fp32", rows=10_000, bf16_cpu=True), True, "pet.label_precision is fp32"),
        (dict(requested="auto", rows=10_000, bf16_cpu=False), True, "no bf16 matrix kernels"),
        (dict(requested="auto", rows=10_000, bf16_cpu=True), False, "fully fine-tuned"),
        (dict(requested="auto", rows=MIN_ROWS_FOR_BF16 - 1, bf16_cpu=True), True, "fewer than"),
    ]
    for kwargs, lora, reason in cases:
        model = RoundingModel(flips=0, lora_trained=lora)
        same, choice, logits = choose(model, sample, 64, **kwargs)
        assert same is model and logits is None and choice.precision == "fp32" and reason in choice.reason and model.calls == []
    on_gpu = RoundingModel(flips=0)
    on_gpu.__class__ = type("OnGpu", (RoundingModel,), {"device": property(lambda self: torch.device("cuda"))})
    same, choice, logits = choose(on_gpu, sample, 64, "bf16", rows=10_000, bf16_cpu=True)
    assert same is on_gpu and choice.precision == "bf16-autocast" and on_gpu.calls == []  # a GPU autocasts already
    # asked for by name, bf16 is checked on any model and CPU
    _, choice, _ = choose(RoundingModel(flips=0, lora_trained=False), sample, 64, "bf16", rows=1, bf16_cpu=False)
    assert choice.precision == "bf16"


def test_a_lora_pattern_model_reloaded_labels_in_bf16_as_in_fp32(tiny_causal_dir, tmp_path):
    """The real path: a LoRA-trained PET model saved (adapters merged) and loaded knows it was LoRA-trained,
    and its bf16 copy is checked on its own labels."""
    from prompt_models.adapters import LoraSettings
    from prompt_models.pet import PETModel
    from prompt_models.training import TrainConfig

    words = {"pos": ["great"], "neg": ["awful"]}
    pet = PETModel.from_pretrained(str(tiny_causal_dir), "{text_a} It was {mask}", words, 32,
                                   lora=LoraSettings(enabled=True, r=4, alpha=8))
    pet.train_model(toy_examples(), TrainConfig(learning_rate=5e-3, max_steps=40, batch_size=8, progress=False), seed=0)
    pet.save(tmp_path / "lora")
    again = PETModel.load(tmp_path / "lora")
    assert again.lora_trained and not PETModel.from_pretrained(str(tiny_causal_dir), "{text_a} It was {mask}", words, 32).lora_trained
    texts = toy_examples() * 40  # 640 texts: enough for auto
    model, choice, logits = choose(again, texts, 64, "auto", rows=len(texts), bf16_cpu=True)
    assert choice.precision == "bf16" and choice.agreement >= label_precision.MIN_AGREEMENT  # a confident toy model
    assert next(model.model.parameters()).dtype == torch.bfloat16
    assert (model.predict_logits(texts[:16]).argmax(-1) == again.predict_logits(texts[:16]).argmax(-1)).all()
