"""How many rows/s `pet predict` could reach with a given student on this CPU at all (issue 16's 2,500 rows/s).

The input is the one `inference.py --sections predict` times: the SST-2 sentence pool cycled to ``--rows`` rows.
Step 1: tokenize it as the student does and batch it as `pet predict` does (chunks of CHUNK_ROWS rows, each
sorted by length, batches of ``--batch-size`` padded to their longest row): the tokens the encoder really runs.
Step 2: FLOPs per row from the student's config: 2 x the encoder's weight matrices per token, attention
(QK^T and AV) per sequence, pooler and head per row.
Step 3: the best speed this machine reaches for matrix products of the encoder's shapes: torch.mm and ONNX
Runtime's MatMul in fp32, and ONNX Runtime's MatMulInteger in int8 (what dynamic int8 quantization runs; the
product's weight-only int8 graph computes in int8 too, accuracy level 4).
Step 4: the student itself (ONNX fp32 and int8 graphs, model only, tokenizing included) on ``--time-rows`` rows.
The bound is peak / FLOPs per row: the rows/s if every FLOP ran at the best product speed measured, before
tokenizing, CSV reading and writing are counted (a kernel faster than the ones measured would raise it).

    .venv/bin/python benchmarks/student_roofline.py --classifier WORK/classifiers/KEY [--out FILE]

Writes benchmarks/student_roofline_results.json (one entry per classifier, replaced when measured again).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = Path(__file__).with_name("student_roofline_results.json")


def padded_shapes(lengths: list[int], chunk_rows: int, batch_size: int) -> list[tuple[int, int]]:
    """[batch, length] of every forward pass `pet predict` runs: per chunk, rows sorted by length, batches padded."""
    shapes = []
    for start in range(0, len(lengths), chunk_rows):
        chunk = sorted(lengths[start : start + chunk_rows])
        shapes += [(len(b), max(b)) for b in (chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))]
    return shapes


def encoder_flops(config, shapes: list[tuple[int, int]]) -> dict:
    """FLOPs of ``shapes`` through a BERT-style encoder with a pooler and a classification head."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = 2 * layers * (4 * h * h + 2 * h * inter)  # q k v o, and the two feed-forward matrices
    tokens = sum(b * l for b, l in shapes)
    rows = sum(b for b, _ in shapes)
    attention = sum(4 * b * l * l * h for b, l in shapes) * layers
    head = rows * 2 * (h * h + h * config.num_labels)
    total = per_token * tokens + attention + head
    return {"tokens_run": tokens, "rows": rows, "mean_tokens_per_row_padded": tokens / rows,
            "gflop_per_token_linear": per_token / 1e9, "total_gflop": total / 1e9, "gflop_per_row": total / rows / 1e9,
            "linear_share": per_token * tokens / total}


def best_seconds(fn, repeats: int, warmups: int = 3) -> float:
    for _ in range(warmups):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ort_gops(m: int, k: int, n: int, repeats: int, threads: int, int8: bool) -> float:
    """ONNX Runtime's product of an [m, k] input by a [k, n] weight: MatMul in fp32, or MatMulInteger of uint8
    by int8 (as dynamic int8 quantization runs it)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        w, a = rng.integers(-127, 128, (k, n), dtype=np.int8), rng.integers(0, 256, (m, k), dtype=np.uint8)
        op, types = "MatMulInteger", (TensorProto.UINT8, TensorProto.INT32)
    else:
        w, a = rng.standard_normal((k, n), dtype=np.float32), rng.standard_normal((m, k), dtype=np.float32)
        op, types = "MatMul", (TensorProto.FLOAT, TensorProto.FLOAT)
    graph = helper.make_graph([helper.make_node(op, ["a", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("a", types[0], [m, k])],
                              [helper.make_tensor_value_info("y", types[1], [m, n])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return 2 * m * k * n / best_seconds(lambda: session.run(None, {"a": a}), repeats) / 1e9


def main() -> None:
    import torch
    from transformers import AutoConfig

    from flows.predict import CHUNK_ROWS
    from hostinfo import cpu_features, machine
    from inference import pool_rows
    from teacher_roofline import gemm_peak
    from prompt_models.inference import encode_texts
    from prompt_models.onnx_student import OnnxClassifier

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classifier", type=Path, required=True, help="a classifier folder of a pet run (model/ and onnx/)")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--time-rows", type=int, default=4096, help="rows the student itself is timed on")
    ap.add_argument("--batch-size", type=int, default=64, help="pet predict's default (pet.train.eval_batch_size)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--target", type=float, default=2500.0, help="rows/s asked for")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    config = AutoConfig.from_pretrained(str(args.classifier / "model"), local_files_only=True)
    fp32 = OnnxClassifier(args.classifier / "onnx", int8=False)
    texts = pool_rows(args.rows)
    # Step 1: the tokens run
    lengths = encode_texts(fp32.tokenizer, texts, None, fp32.max_length).lengths
    shapes = padded_shapes(lengths, CHUNK_ROWS, args.batch_size)
    # Step 2: FLOPs
    flops = encoder_flops(config, shapes)
    # Step 3: GEMM peaks at the encoder's shapes (rows = one batch's tokens)
    m, h, inter = int(args.batch_size * flops["mean_tokens_per_row_padded"]), config.hidden_size, config.intermediate_size
    shapes_mkn = [(m, h, h), (m, h, inter), (m, inter, h)]
    threads = torch.get_num_threads()
    peaks = {"fp32_torch_mm": max(gemm_peak(torch.float32, *s, args.repeats) for s in shapes_mkn),
             "fp32_ort_matmul": max(ort_gops(*s, args.repeats, threads, int8=False) for s in shapes_mkn),
             "int8_ort_matmulinteger": max(ort_gops(*s, args.repeats, threads, int8=True) for s in shapes_mkn)}
    bound = {k: v / flops["gflop_per_row"] for k, v in peaks.items()}
    # Step 4: the student's graphs, model only (tokenizing and padding included)
    measured = {}
    timed = texts[: args.time_rows]
    timed_flops = encoder_flops(config, padded_shapes(lengths[: args.time_rows], CHUNK_ROWS, args.batch_size))
    for name, clf in (("onnx-fp32", fp32), ("onnx-int8", OnnxClassifier(args.classifier / "onnx", int8=True))):
        seconds = best_seconds(lambda: clf.predict_texts(timed, None, args.batch_size), 2, warmups=1)
        measured[name] = {"rows_per_s": len(timed) / seconds, "achieved_gflop_s": timed_flops["total_gflop"] / seconds}
    row = {"classifier": args.classifier.name, "model_type": config.model_type,
           "hidden": h, "layers": config.num_hidden_layers, "intermediate": inter, "rows": args.rows,
           "input": "SST-2 sentence pool cycled (the pet predict benchmark's CSV)", "batch_size": args.batch_size,
           "chunk_rows": CHUNK_ROWS, "gemm_shape_rows": m, **flops, "gemm_peak_gflop_s": peaks,
           "bound_rows_per_s": bound, "model_only_time_rows": args.time_rows, "model_only": measured,
           "target_rows_per_s": args.target, "target_gflop_s": args.target * flops["gflop_per_row"],
           "machine": machine(), "cpu_features": cpu_features(), "threads": threads, "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M"), "load_avg_1m_at_end": os.getloadavg()[0]}
    print(json.dumps(row, indent=1), flush=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    results["rows"] = [r for r in results["rows"] if r["classifier"] != row["classifier"]] + [row]
    tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
