"""How close fp32 teacher labeling already is to what this CPU's matrix units can do (issue 16's 2x question).

For each trained pattern model: label the README job's unlabeled texts as ``label_with_model`` does
(``PETModel.predict_logits``, length-sorted batches), count the tokens each forward pass really ran
(padding included, read from a hook on the backbone), and turn them into FLOPs:
2 x (decoder weights) per token + attention (QK^T and AV over each sequence) + the LM head at one
position per text. Beside it, the best fp32 (and bf16) GEMM speed torch reaches on this machine for
matrices of the same shapes. The ratio says how much a faster fp32 path could still win.

    .venv/bin/python benchmarks/teacher_roofline.py --models WORK/pattern_models/*/model [--n 1000]

Writes benchmarks/teacher_roofline_results.json (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
OUT = Path(__file__).with_name("teacher_roofline_results.json")


def gemm_peak(dtype, m: int, k: int, n: int, repeats: int = 20) -> float:
    """Best GFLOP/s of torch.mm for an [m, k] x [k, n] product."""
    import torch

    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    for _ in range(3):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def model_flops(pet, shapes: list[tuple[int, int]]) -> dict:
    """FLOPs of the forward passes of ``shapes`` ([batch, length] each) through this causal LM."""
    cfg = pet.model.config
    layers = pet.model.model.layers
    linear = sum(p.numel() for n, p in layers.named_parameters() if p.dim() == 2)  # q k v o gate up down
    tokens = sum(b * l for b, l in shapes)
    attention = sum(4 * b * l * l * cfg.hidden_size for b, l in shapes) * len(layers)  # QK^T, AV (no causal saving)
    head = sum(b for b, _ in shapes) * 2 * cfg.hidden_size * cfg.vocab_size  # one position per text
    return {"tokens_run": tokens, "linear_gflop": 2 * linear * tokens / 1e9, "attention_gflop": attention / 1e9,
            "head_gflop": head / 1e9, "total_gflop": (2 * linear * tokens + attention + head) / 1e9,
            "decoder_linear_params": linear}


def main() -> None:
    import torch

    from prompt_models.pet import PETModel
    from teacher_labeling import machine, texts

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    examples = texts(args.n)
    rows = []
    for path in args.models:
        pet = PETModel.load(path)
        shapes: list[tuple[int, int]] = []
        hook = pet.model.model.register_forward_pre_hook(
            lambda mod, a, kw: shapes.append(tuple((kw.get("input_ids") if kw.get("input_ids") is not None else a[0]).shape)),
            with_kwargs=True)
        pet.predict_logits(examples[: args.batch_size], args.batch_size)  # warm-up
        shapes.clear()
        t0 = time.perf_counter()
        pet.predict_logits(examples, args.batch_size)
        seconds = time.perf_counter() - t0
        hook.remove()
        f = model_flops(pet, shapes)
        mean_len = f["tokens_run"] / len(examples)
        m = int(args.batch_size * mean_len)  # rows of the products in one batch (batch x tokens)
        h, inter = pet.model.config.hidden_size, pet.model.config.intermediate_size
        peaks = {str(dt).split(".")[-1]: max(gemm_peak(dt, m, h, inter), gemm_peak(dt, m, inter, h), gemm_peak(dt, m, h, h))
                 for dt in (torch.float32, torch.bfloat16)}
        achieved = f["total_gflop"] / seconds
        rows.append({"model": Path(path).parent.name, "template": pet.pattern.template if hasattr(pet, "pattern") else None,
                     "texts": len(examples), "seconds": round(seconds, 2), "texts_per_s": round(len(examples) / seconds, 1),
                     "mean_tokens_per_text_padded": round(mean_len, 1), **{k: round(v, 2) if isinstance(v, float) else v
                                                                           for k, v in f.items()},
                     "achieved_gflop_s": round(achieved, 1),
                     "gemm_peak_gflop_s": {k: round(v, 1) for k, v in peaks.items()},
                     "share_of_fp32_gemm_peak": round(achieved / peaks["float32"], 3)})
        print(json.dumps(rows[-1]), flush=True)
        del pet
    args.out.write_text(json.dumps({"machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                               "date": time.strftime("%Y-%m-%d %H:%M"), "load_avg_1m_at_end": os.getloadavg()[0],
                               "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
