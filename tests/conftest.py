"""Shared fixtures: a tiny BERT masked LM and tokenizer built in code (no downloads)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

WORDS = (
    "the a movie film was is it great good terrible bad awful fine plot actors story really very not "
    "boring fun all in just and of to this that i liked hated loved wonderful . , ! ? yes no maybe "
    "question answer sports business world science cat dog run ran fast slow"
).split()


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["##ly", "##s", "##ful", "##ing"]
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertForMaskedLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def toy_examples(n_per_class: int = 8):
    """A trivially separable sentiment task in the tiny vocabulary."""
    from prompt_models.data import InputExample

    pos = ["the movie was great", "a good film", "i loved the plot", "wonderful actors", "great fun", "really good story", "i liked it", "very good"]
    neg = ["the movie was awful", "a bad film", "i hated the plot", "terrible actors", "boring plot", "really bad story", "not fun", "very bad"]
    out = []
    for i in range(n_per_class):
        out.append(InputExample(pos[i % len(pos)], label="pos", guid=f"p{i}"))
        out.append(InputExample(neg[i % len(neg)], label="neg", guid=f"n{i}"))
    return out
