"""Shared fixtures: a tiny BERT masked LM and tokenizer built in code (no downloads)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# Prefect binds its console log handler to sys.stderr when its logging is first set up (lazily, at the
# first flow run): set it up here, not inside a test whose captured stderr (capsys) is closed when that
# test ends ("I/O operation on closed file" in a later test, depending on the order tests run in)
import prefect  # noqa: E402,F401
from prefect.logging.configuration import ensure_logging_setup  # noqa: E402

ensure_logging_setup()

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
    from prompt_models.examples import InputExample

    pos = ["the movie was great", "a good film", "i loved the plot", "wonderful actors", "great fun", "really good story", "i liked it", "very good"]
    neg = ["the movie was awful", "a bad film", "i hated the plot", "terrible actors", "boring plot", "really bad story", "not fun", "very bad"]
    out = []
    for i in range(n_per_class):
        out.append(InputExample(pos[i % len(pos)], label="pos", guid=f"p{i}"))
        out.append(InputExample(neg[i % len(neg)], label="neg", guid=f"n{i}"))
    return out


def _generator_tokenizer():
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tok.add_special_tokens({"additional_special_tokens": ["<extra_id_0>", "<extra_id_1>", "<extra_id_2>"]})
    return tok


def build_tiny_t5(folder: Path, train_target: str | None = None, steps: int = 150) -> Path:
    """A tiny T5 with sentinel tokens; optionally taught to answer every input with ``train_target``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = _generator_tokenizer()
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=2,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.pad_token_id,
        dropout_rate=0.0,
    )
    model = T5ForConditionalGeneration(cfg)
    if train_target:
        srcs = [f"{ex.text_a} <extra_id_0> {'great' if ex.label == 'pos' else 'awful'} <extra_id_1>" for ex in toy_examples()]
        enc = tok(srcs, return_tensors="pt", padding=True)
        labels = tok([train_target] * len(srcs), return_tensors="pt", add_special_tokens=False).input_ids
        labels = torch.cat([labels, torch.full((len(srcs), 1), tok.sep_token_id)], 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            loss = model(**enc, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_tiny_gpt2(folder: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _generator_tokenizer()
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                     bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    return build_tiny_t5(tmp_path_factory.mktemp("tiny_t5"), "<extra_id_0> it was <extra_id_1> . <extra_id_2>")


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def build_tiny_causal_lm(folder: Path, seed: int = 0) -> Path:
    """A tiny Llama-style causal LM with a byte-level BPE tokenizer trained in code (GPT-2/SmolLM2 style)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [" ".join(WORDS)] + [ex.text_a + " it was great ." for ex in toy_examples()]
    corpus += ["the film was awful", "it was terrible", "a wonderful story", "i really liked it"] * 5
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=256, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
        tie_word_embeddings=True,
    )
    folder.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_llama"))
