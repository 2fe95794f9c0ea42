"""Which int8 ONNX student stays closest to its fp32 graph: ONNX Runtime quantization settings (dynamic int8 and
weight-only MatMulNBits) compared
on unlabeled texts only (never on test): argmax agreement, max and mean |prob| difference, and speed.

    nice -n 10 .venv/bin/python benchmarks/onnx_int8_fidelity.py --work WORK_DIR   # a pet run's work_dir

Texts: the run's unlabeled shards (the texts the student was distilled on) plus the SST-2 sentence pool
(../shared/data/lmbff_train_pools/SST-2/train.tsv) minus every sentence of the test split, labels unused.
Each variant quantizes the run's fp32 graph (``quantize_dynamic`` or ``MatMulNBitsQuantizer``) and is scored at the product's batch
of 64; speed is texts/s on the first ``--speed-texts`` texts at batch 64 (a fifth of them at batch 1), variants interleaved and
best of ``--repeats`` (the CPU is shared: compare within one run). Results go to
benchmarks/onnx_int8_fidelity_results.json after every variant, so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import hostinfo

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT.parent / "shared" / "data" / "lmbff_train_pools" / "SST-2" / "train.tsv"
RESULTS = Path(__file__).with_name("onnx_int8_fidelity_results.json")
# every variant: weights int8 (QInt8), activations uint8 quantized per batch (dynamic); "head" = pooler and
# classifier; "ffn-out" = each layer's FFN output projection (its input carries the GELU outliers)
VARIANTS = {
    "per-tensor, all ops (ORT default)": dict(per_channel=False),
    "per-channel, all ops (shipped before)": dict(per_channel=True),
    "per-channel, MatMul only": dict(per_channel=True, ops=["MatMul"]),
    "per-channel, MatMul only, head fp32": dict(per_channel=True, ops=["MatMul"], exclude=["head"]),
    "per-channel, MatMul only, head fp32, reduce_range": dict(per_channel=True, ops=["MatMul"], exclude=["head"],
                                                               reduce_range=True),
    "per-channel, MatMul only, head + first/last layer fp32": dict(per_channel=True, ops=["MatMul"],
                                                                   exclude=["head", "first", "last"]),
    "per-channel, MatMul only, head + first/last ffn-out fp32": dict(per_channel=True, ops=["MatMul"],
                                                                     exclude=["head", "ffn-out-first", "ffn-out-last"]),
    "per-channel, MatMul only, head + every ffn-out fp32": dict(per_channel=True, ops=["MatMul"],
                                                                exclude=["head", "ffn-out"]),
    # one kind of projection kept fp32 in every layer, then one layer kept fp32: where the disagreement comes from
    **{f"per-channel, MatMul only, head + every {kind} fp32": dict(per_channel=True, ops=["MatMul"], exclude=["head", kind])
       for kind in ("qkv", "attn-out", "ffn-in")},
    **{f"per-channel, MatMul only, head + layer {i} fp32": dict(per_channel=True, ops=["MatMul"], exclude=["head", f"layer.{i}"])
       for i in range(6)},
    # weight-only: int8 (or int4) weights in blocks along the input dimension, one scale per block (MatMulNBits);
    # accuracy level 4 quantizes the activations to int8 per row and block too, not per batch tensor
    "weight-only int8 (MatMulNBits), block 32, accuracy level 4": dict(weight_only=True, bits=8, block_size=32),
    "weight-only int8 (MatMulNBits), block 128, accuracy level 4": dict(weight_only=True, bits=8, block_size=128),
    "weight-only int4 (MatMulNBits), block 32, accuracy level 4": dict(weight_only=True, bits=4, block_size=32),
}


def machine() -> str:
    return hostinfo.machine("shared with a long benchmark (load average 2+)")


def texts_for(work: str) -> list[str]:
    import pyarrow.parquet as pq

    from pet_io.example_files import read_examples

    shards = [t for f in sorted(glob.glob(f"{work}/data/shards/*.parquet")) for t in pq.read_table(f)["text_a"].to_pylist()]
    test = {ex.text_a for f in glob.glob(f"{work}/data/test-*.jsonl") for ex in read_examples(f)}
    pool = [line.split("\t")[0] for line in POOL.read_text(encoding="utf-8").splitlines()[1:]]
    seen, out = set(test), []
    for t in shards + pool:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def excluded(fp32: Path, groups: list[str]) -> list[str]:
    """Names of the weight MatMul/Gemm nodes in ``groups`` (node names as torch.onnx writes a BERT encoder)."""
    import re

    import onnx

    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in ("MatMul", "Gemm") and any(i in weights for i in n.input)]
    layer = {n.name: int(m.group(1)) for n in nodes if (m := re.search(r"/layer\.(\d+)/", n.name))}
    last = max(layer.values())
    kinds = {"qkv": "/attention/self/", "attn-out": "/attention/output/dense/", "ffn-in": "/intermediate/dense/"}

    def kind(n) -> str | None:
        if n.name not in layer:
            return None
        found = [k for k, part in kinds.items() if part in n.name]
        return found[0] if found else ("ffn-out" if "/output/dense/" in n.name else None)

    def pick(group: str, n) -> bool:
        if group == "head":
            return n.name not in layer
        if group in ("first", "last"):
            return layer.get(n.name) == (0 if group == "first" else last)
        if group.startswith("layer."):
            return layer.get(n.name) == int(group.split(".")[1])
        for end, index in (("-first", 0), ("-last", last)):
            if group.endswith(end):
                return kind(n) == group[: -len(end)] and layer[n.name] == index
        return kind(n) == group

    # dynamic quantization first rewrites a Gemm as MatMul + Add, the MatMul named NAME_MatMul
    return [n.name + ("_MatMul" if n.op_type == "Gemm" else "") for n in nodes if any(pick(g, n) for g in groups)]


def quantize(fp32: Path, out: Path, per_channel: bool = True, ops: list[str] | None = None, exclude: list[str] | None = None,
             reduce_range: bool = False, weight_only: bool = False, bits: int = 8, block_size: int = 32) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if weight_only:
        from prompt_models.onnx_student import quantize_weights

        quantize_weights(fp32, out, bits=bits, block_size=block_size)
        return

    quantize_dynamic(str(fp32), str(out), op_types_to_quantize=ops, per_channel=per_channel, reduce_range=reduce_range,
                     weight_type=QuantType.QInt8, nodes_to_exclude=excluded(fp32, exclude or []),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def speed(clfs: dict, texts: list[str], batch_sizes: list[int], repeats: int) -> dict:
    best = {(name, bs): float("inf") for name in clfs for bs in batch_sizes}
    for _ in range(repeats):  # interleaved: a load spike hits every variant alike
        for bs in batch_sizes:
            for name, clf in clfs.items():
                n = len(texts) if bs > 1 else len(texts) // 5
                t0 = time.perf_counter()
                clf.predict_texts(texts[:n], None, bs)
                best[(name, bs)] = min(best[(name, bs)], (time.perf_counter() - t0) / n)
    return {name: {f"texts_per_s_batch_{bs}": 1 / best[(name, bs)] for bs in batch_sizes} for name in clfs}


def main() -> None:
    from prompt_models.onnx_student import FP32_FILE, INT8_FILE, OnnxClassifier

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--speed-texts", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    folder = Path(sorted(glob.glob(f"{args.work}/classifiers/*/onnx"))[0])
    texts = texts_for(args.work)
    results = {} if args.force or not RESULTS.exists() else json.loads(RESULTS.read_text())
    results.update(machine=machine(), classifier=folder.parent.name, n_texts=len(texts), batch_size=64,
                   texts="the run's unlabeled shards + SST-2 sentence pool, test sentences removed")
    rows = results.setdefault("variants", {})

    def save() -> None:
        tmp = RESULTS.with_name(f".{RESULTS.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(RESULTS)

    ref = OnnxClassifier(folder, int8=False).predict_texts(texts, None, 64)
    work = Path(tempfile.mkdtemp(prefix="int8-variants."))
    try:
        dirs = {}
        for i, (name, opts) in enumerate(VARIANTS.items()):
            dirs[name] = work / str(i)
            shutil.copytree(folder, dirs[name], ignore=shutil.ignore_patterns(INT8_FILE))
            quantize(folder / FP32_FILE, dirs[name] / INT8_FILE, **opts)
            if name in rows:
                continue
            got = OnnxClassifier(dirs[name], int8=True).predict_texts(texts, None, 64)
            diff = np.abs(softmax(got) - softmax(ref)).max(-1)
            rows[name] = {"options": opts, "argmax_agreement": float((got.argmax(-1) == ref.argmax(-1)).mean()),
                          "n_flipped": int((got.argmax(-1) != ref.argmax(-1)).sum()),
                          "max_prob_diff": float(diff.max()), "mean_prob_diff": float(diff.mean()),
                          "int8_mb": (dirs[name] / INT8_FILE).stat().st_size / 2**20}
            print(name, json.dumps(rows[name]), flush=True)
            save()
        if "speed" not in results:
            clfs = {"fp32": OnnxClassifier(folder, int8=False)}
            clfs.update({name: OnnxClassifier(d, int8=True) for name, d in dirs.items()})
            results["speed"] = {"n_texts": args.speed_texts, "repeats": args.repeats,
                                **speed(clfs, texts[: args.speed_texts], [64, 1], args.repeats)}
            results["date"] = time.strftime("%Y-%m-%d %H:%M")
            save()
            print(json.dumps(results["speed"], indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
