"""The distilled classifier as ONNX for CPU serving: an fp32 graph (torch.onnx export, then ONNX Runtime's
transformer fusions) and an int8 copy (ONNX Runtime's weight-only quantization of its MatMul weights, int8 in
blocks of 128, with int8 compute: ``quantize_weights``).

A folder written by ``export`` holds both graphs, the tokenizer and ``onnx.json``: the guard's verdicts on the
engines that may lose accuracy (the int8 graph and the torch model in bf16, ``accept``), which ``engines`` reads.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .inference import encode_texts, run_batches

FP32_FILE, INT8_FILE, META_FILE = "model.onnx", "model_int8.onnx", "onnx.json"
MAX_LOSS = 0.005  # accuracy (0-1) the int8 graph or the bf16 model may lose against fp32 before it is refused


@dataclass
class OnnxMeta:
    labels: list[str]
    max_length: int
    input_names: list[str]
    int8_accepted: bool = False
    # accuracy of fp32 and the int8 graph on the split the guard used (test, else dev), written by ``accept``;
    # "unlabeled": no labeled split, so the fp32 graph's labels are gold (fp32 1.0, int8 its agreement)
    guard_split: str | None = None
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None
    # how the int8 graph was made (``QUANTIZATION``); an export by another method is redone (None: before this field)
    quantization: str | None = None
    # the torch model with bf16 weights on the same split (``accept``); None: not checked (the CPU that made the
    # classifier had no bf16 kernels, ``engines.cpu_runs_bf16``, or it was made before this field)
    bf16_accuracy: float | None = None
    bf16_accepted: bool = False

    @classmethod
    def read(cls, folder: str | Path) -> "OnnxMeta":
        return cls(**json.loads((Path(folder) / META_FILE).read_text()))

    def write(self, folder: str | Path) -> None:
        path = Path(folder) / META_FILE
        tmp = path.with_name(f".{META_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)


QUANTIZATION = "matmulnbits-8bit-block128-symmetric-acc4"  # quantize_weights' defaults


def export(clf, out_dir: str | Path, opset: int = 17) -> Path:
    """Write ``out_dir`` (fp32 + int8 graphs, tokenizer, onnx.json) for a ``SequenceClassifier``; the folder
    appears complete or not at all."""
    from onnxruntime.transformers.optimizer import optimize_model

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = clf.model.eval()
    device = next(model.parameters()).device
    model.to("cpu")
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in clf.tokenizer.model_input_names]
    dummy = clf.tokenizer(["an example text", "another, somewhat longer example text"], padding=True, return_tensors="pt")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        raw = tmp / "raw.onnx"
        _export(model, dummy, names, raw, opset)
        cfg = model.config
        # fused attention / layer norm / GELU where ONNX Runtime knows the architecture (BERT-like encoders)
        kind = cfg.model_type if cfg.model_type in ("bert", "roberta", "distilbert", "albert") else None
        if kind:
            opt = optimize_model(str(raw), model_type="bert" if kind != "distilbert" else kind,
                                 num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size)
            opt.save_model_to_file(str(tmp / FP32_FILE))
            raw.unlink()
        else:
            raw.replace(tmp / FP32_FILE)
        quantize_weights(tmp / FP32_FILE, tmp / INT8_FILE)
        clf.tokenizer.save_pretrained(tmp)
        OnnxMeta(list(clf.labels), clf.max_length, names, quantization=QUANTIZATION).write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        model.to(device)
    return out


def quantize_weights(fp32: str | Path, out: str | Path, bits: int = 8, block_size: int = 128) -> Path:
    """Write ``out``: the graph ``fp32`` with every MatMul by a constant weight as ONNX Runtime's MatMulNBits
    (symmetric ``bits``-bit weights, one scale per ``block_size`` inputs), accuracy level 4: the activations
    are quantized to int8 per row and block when it runs, and the product is computed in int8.

    Chosen on unlabeled texts, not on test (benchmarks/onnx_int8_fidelity.py, benchmarks/RESULTS.md): on 6,219
    SST-2 pool sentences the README job's student in this form agreed with its fp32 graph on 99.7% of labels
    (max |prob| difference 0.09), where every dynamic int8 setting tried (``quantize_dynamic``: per-tensor or
    per-channel, MatMul only, head, first/last or any one layer or projection kept fp32, reduce_range) stayed at
    95.5-99.0% (max difference 0.30-0.84), with one activation scale per batch tensor. Rule: agreement >= 99.5%
    (then even if every changed label were wrong, <= 0.5 points lost, the guard's bound), then the fastest:
    blocks of 128 ran 1.2x the fp32 graph at batch 64 and 2.1x at batch 1; dynamic int8 ran about 1.8x / 2.1x."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=4, bits=bits)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=bits, block_size=block_size, is_symmetric=True,
                                     accuracy_level=4, algo_config=config)
    log = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = log.level
    log.setLevel(logging.WARNING)  # a line per node otherwise
    try:
        quantizer.process()
    finally:
        log.setLevel(level)
    quantizer.model.save_model_to_file(str(out), False)
    return Path(out)


def _export(model, dummy, names: list[str], path: Path, opset: int) -> None:
    class Logits(torch.nn.Module):
        # positional inputs in ``names`` order; only the logits come out
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args))).logits

    # the tracer's warnings are about shapes it treats as constants (checked: the graph takes any batch and
    # length, tests compare its logits with torch's); a user of `pet run` has nothing to do about them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _torch_export(Logits(model), dummy, names, path, opset)


def _torch_export(module, dummy, names: list[str], path: Path, opset: int) -> None:
    torch.onnx.export(
        module, tuple(dummy[k] for k in names), str(path), input_names=names, output_names=["logits"],
        dynamic_axes={**{k: {0: "batch", 1: "length"} for k in names}, "logits": {0: "batch"}},
        opset_version=opset, dynamo=False,
    )


def accept(folder: str | Path, split: str, fp32_accuracy: float, accuracies: dict[str, float | None]) -> None:
    """Record in onnx.json, in one write, the accuracy on ``split`` of fp32 and of each engine that may lose
    some ("int8": the int8 graph, "bf16": the torch model in bf16), and accept each unless it loses more than
    MAX_LOSS; None: not checked (not served)."""
    meta = OnnxMeta.read(folder)
    meta.guard_split, meta.fp32_accuracy = split, fp32_accuracy
    for engine, accuracy in accuracies.items():
        setattr(meta, f"{engine}_accuracy", accuracy)
        setattr(meta, f"{engine}_accepted", accuracy is not None and fp32_accuracy - accuracy <= MAX_LOSS + 1e-9)
    meta.write(folder)


def load_saved_tokenizer(folder: Path):
    """The tokenizer ``export`` saved in ``folder``. Its class is taken by the name the saved
    ``tokenizer_config.json`` gives (the class ``AutoTokenizer`` chose when the student was loaded), not by
    ``AutoTokenizer``: importing that imports transformers' model and generation code too, 2.6 s of a 40 s
    `pet predict` of 100,000 rows. A folder without a known name is loaded by ``AutoTokenizer``."""
    import transformers

    try:
        name = json.loads((folder / "tokenizer_config.json").read_text()).get("tokenizer_class")
        cls = getattr(transformers, name) if isinstance(name, str) else None
    except (OSError, ValueError, AttributeError):
        cls = None
    if cls is None or not hasattr(cls, "from_pretrained"):
        cls = transformers.AutoTokenizer
    return cls.from_pretrained(str(folder), local_files_only=True)


class OnnxClassifier:
    """The ONNX twin of ``SequenceClassifier.predict_texts``: same tokenization, sorting and batching."""

    def __init__(self, folder: str | Path, int8: bool, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder)
        self.meta = OnnxMeta.read(folder)
        self.labels, self.max_length = self.meta.labels, self.meta.max_length
        self.texts_cut = 0  # as SequenceClassifier.texts_cut
        self.engine = "onnx-int8" if int8 else "onnx-fp32"
        self.tokenizer = load_saved_tokenizer(folder)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        # idle threads sleep instead of spinning (as OMP_WAIT_POLICY=PASSIVE): a shared CPU is not slowed
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(folder / (INT8_FILE if int8 else FP32_FILE)), opts,
                                            providers=["CPUExecutionProvider"])

    def predict_texts(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None, batch_size: int = 64,
                      progress: bool = False) -> np.ndarray:
        enc = encode_texts(self.tokenizer, texts_a, texts_b, self.max_length)
        self.texts_cut += enc.cut
        names = self.meta.input_names

        def run(idx):
            batch = enc.batch(idx)
            return self.session.run(["logits"], {k: batch[k] for k in names})[0]

        return run_batches(enc.lengths, run, batch_size, len(self.labels), progress)
