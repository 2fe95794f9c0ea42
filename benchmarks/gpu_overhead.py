"""Where a SmolLM2-135M forward's time goes on a GPU: kernel-launch latency, kernels per forward, and ms per
forward at a few (batch, length) shapes for float32 weights under bf16 autocast (the product's labeling
today), bf16 weights, and bf16 weights replayed as one CUDA graph. Random weights from the carried
config.json (see gpu_labeling.py). Device command:

    python benchmarks/gpu_overhead.py --out $OUT/gpu_overhead_results.json

``--dry-run`` runs it on the CPU with 1 layer and tiny shapes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_labeling import machine, random_lm  # noqa: E402
from pet_io.atomic import write_json_atomic  # noqa: E402


def ms_per_call(fn, device: str, repeats: int) -> float:
    fn()
    fn()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats * 1e3


def launch_us(device: str) -> float:
    """Microseconds per tiny op issued from Python (dispatch + launch; the GPU work itself is nil)."""
    x = torch.zeros(8, device=device)
    return ms_per_call(lambda: [x.add_(1) for _ in range(1000)], device, 3)  # ms per 1000 launches = us each


def kernels_per_forward(forward, device: str) -> int | None:
    if device != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        forward()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA"
               and not any(w in e.name.lower() for w in ("memcpy", "memset")))


def graphed(forward, device: str):
    """Capture ``forward`` (static inputs) once as a CUDA graph; None where capture fails."""
    if device != "cuda":
        return None
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                forward()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            forward()
        return g.replay
    except Exception as exc:  # noqa: BLE001 - recorded in the results, not fatal
        print(f"graph capture failed: {type(exc).__name__}: {exc}"[:300], flush=True)
        return None


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).with_name("gpu_overhead_results.json")))
    args = ap.parse_args(argv)
    layers, shapes, repeats = None, [(1, 32), (64, 32), (1024, 32), (256, 256), (1024, 256)], 10
    if args.dry_run:
        args.device, layers, shapes, repeats = "cpu", 1, [(2, 8)], 2
    dev = args.device
    result = {"machine": machine(dev), "torch": torch.__version__, "launch_us": launch_us(dev), "rows": []}
    print(json.dumps(result), flush=True)
    model = random_lm(0, layers).to(dev).eval()
    cfg = model.config
    # the timed forward is model.model: no LM head, and the embedding is a lookup
    matmul_params = sum(p.numel() for p in model.model.parameters()) - model.get_input_embeddings().weight.numel()
    for variant in ("fp32+autocast", "bf16", "bf16+graph"):
        if variant == "bf16":
            model = model.to(torch.bfloat16)
        for bs, n in shapes:
            ids = torch.randint(100, 20000, (bs, n), device=dev)
            att = torch.ones_like(ids)
            att[: bs // 2, n // 2:] = 0  # half the rows padded, as in a real batch

            @torch.inference_mode()
            def forward():
                with torch.autocast(dev, torch.bfloat16, enabled=dev == "cuda" and variant == "fp32+autocast"):
                    return model.model(input_ids=ids, attention_mask=att, use_cache=False).last_hidden_state

            fn = graphed(forward, dev) if variant.endswith("graph") else forward
            row = {"variant": variant, "batch": bs, "length": n, "graph_ok": fn is not None}
            if fn is not None:
                row["ms_per_forward"] = ms_per_call(fn, dev, repeats)
                # matmul FLOPs of the non-embedding weights plus attention's QK^T and AV (unmasked)
                flop = 2 * matmul_params * bs * n + 4 * n * cfg.hidden_size * cfg.num_hidden_layers * bs * n
                row["tflops"] = flop / (row["ms_per_forward"] * 1e-3) / 1e12
                if variant != "bf16+graph":
                    row["kernels"] = kernels_per_forward(forward, dev)
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
            write_json_atomic(args.out, result, indent=1)
    return result


if __name__ == "__main__":
    main()
