"""The student's inputs: ``inference.encode_texts`` (the fast tokenizer called as transformers calls it),
``EncodedRows.batch`` (numpy padding) and the ONNX folder's tokenizer, against transformers' own calls."""
import json
import shutil

import numpy as np
import pytest


def _tokenizer(folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    # a pad id that is not 0, so that a wrong pad value cannot pass as the right one
    tok.pad_token = tok.convert_ids_to_tokens(3)
    assert tok.pad_token_id == 3
    return tok


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_causal_dir"])
def test_encoded_rows_are_what_the_tokenizer_itself_gives(fixture, request):
    """The same inputs as transformers' own call and ``tokenizer.pad``: single texts and pairs, truncated on
    either side, padded on either side, special tokens in the text split or not."""
    from prompt_models.inference import _backend_call_is_plain, encode_texts

    tok = _tokenizer(request.getfixturevalue(fixture))
    assert _backend_call_is_plain(tok)  # else this test would compare transformers' call with itself
    special = tok.convert_ids_to_tokens(2)
    texts_a = ["the movie was great and the plot was good", "a bad film", f"great {special} fun", "i hated it " * 10]
    texts_b = ["very good", "the actors were terrible and boring", "fun", "not fun"]
    for side, truncation, split in (("right", "right", False), ("left", "left", False), ("right", "right", True)):
        tok.padding_side, tok.truncation_side, tok.split_special_tokens = side, truncation, split
        for b in (None, texts_b):
            enc = encode_texts(tok, texts_a, b, max_length=12)
            want = tok(texts_a, b, truncation=True, max_length=12)
            assert enc.inputs == {k: want[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in want}
            assert enc.lengths == [len(ids) for ids in want["input_ids"]] and max(enc.lengths) == 12
            idx = [3, 1, 2]
            padded = tok.pad({k: [want[k][i] for i in idx] for k in enc.inputs}, return_tensors="np")
            got = enc.batch(idx)
            assert got.keys() == set(enc.inputs) and all(got[k].dtype == np.int64 for k in got)
            for k in got:
                np.testing.assert_array_equal(got[k], padded[k])


def test_the_rows_cut_at_max_length_are_counted(tiny_model_dir, monkeypatch):
    """`pet predict` says how many texts were cut: counted from the tokenizer's own output, on both paths of
    ``encode_texts``; a text of exactly max_length tokens is not cut."""
    from prompt_models import inference

    tok = _tokenizer(tiny_model_dir)
    texts = ["the movie was great", "the movie was really great", "a bad film " * 5, "fun"]  # 6, 7, 17, 3 tokens
    assert [len(ids) for ids in tok(texts)["input_ids"]] == [6, 7, 17, 3]
    for plain in (True, False):  # the Rust tokenizer called directly, or through transformers' call
        monkeypatch.setattr(inference, "_backend_call_is_plain", lambda t, plain=plain: plain)
        assert inference.encode_texts(tok, texts, None, max_length=6).cut == 2
        assert inference.encode_texts(tok, texts, None, max_length=7).cut == 1
        assert inference.encode_texts(tok, texts, None, max_length=32).cut == 0
        assert inference.encode_texts(tok, texts, ["good"] * 4, max_length=8).cut == 2  # a pair: 6 + 1, 7 + 1 tokens
    # a Python tokenizer keeps no overflow: the rows that reached max_length are tokenized again, uncut
    ids = [[0] * 6, [0] * 6, [0] * 6, [0] * 3]
    assert inference.count_cut(tok, texts, None, ids, None, 6) == 2


def test_encoding_refuses_what_transformers_refuses(tiny_model_dir):
    from prompt_models.inference import encode_texts

    tok = _tokenizer(tiny_model_dir)
    with pytest.raises(ValueError):  # a text without its pair
        encode_texts(tok, ["a good film", "a bad film"], ["fun"], max_length=12)
    tok.pad_token = None
    with pytest.raises(ValueError, match="no padding token"):
        encode_texts(tok, ["a good film"], None, max_length=12)


def test_no_rows_encode_to_no_rows(tiny_model_dir):
    from prompt_models.inference import encode_texts

    enc = encode_texts(_tokenizer(tiny_model_dir), [], None, max_length=12)
    assert enc.lengths == [] and enc.batch([])["input_ids"].shape == (0, 0)


def test_the_onnx_tokenizer_loads_as_auto_tokenizer_does(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from prompt_models.onnx_student import load_saved_tokenizer

    shutil.copytree(tiny_model_dir, tmp_path / "m")
    auto = AutoTokenizer.from_pretrained(str(tmp_path / "m"))
    by_name = load_saved_tokenizer(tmp_path / "m")
    assert type(by_name) is type(auto) and by_name.model_input_names == auto.model_input_names
    assert by_name("a good film")["input_ids"] == auto("a good film")["input_ids"]
    config = tmp_path / "m" / "tokenizer_config.json"
    for value in ("NoSuchTokenizer", None):  # an unknown or missing class name: AutoTokenizer decides
        cfg = json.loads(config.read_text())
        cfg["tokenizer_class"] = value
        config.write_text(json.dumps(cfg))
        assert type(load_saved_tokenizer(tmp_path / "m")) is type(AutoTokenizer.from_pretrained(str(tmp_path / "m")))
