"""Teacher soft-labeling on CPU: what makes the README job's labeling (2 SmolLM2-135M pattern models,
1,000 SST-2 sentences) faster, and how far each change moves the soft labels.

Each variant loads each trained pattern model once (``PETModel.load``, as ``label_with_model`` does) and
labels the texts in shards of 500 with ``predict_logits`` (length-sorted batches); the soft labels are the
uniform ensemble at T = 2. Variants, in one process, one after the other:

* ``fp32``: today's path.
* ``bf16``: bf16 autocast on the CPU (this CPU has AVX512-BF16).
* ``bf32``: weights and activations stay fp32; only the matrix products run in bf16 (oneDNN's
  ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``: inputs rounded, fp32 accumulation and output).
* ``int8`` / ``int8-channel``: ``torch.ao.quantization.quantize_dynamic`` of the transformer's Linear layers
  (the LM head stays fp32) with per-tensor / per-channel weight scales. Neither kept the soft labels
  within tolerance of fp32 here, so the product has no such option (benchmarks/RESULTS.md).
* ``int8-no-down``, ``int8-no-ends``, ``int8-attn``, ``int8-mlp-in``: the same, per-channel, on only some
  Linear modules (``PARTIAL``).

Each variant's soft labels are compared to fp32 on all texts: argmax agreement and max |prob| difference.
A torch profile of one fp32 batch says where the time goes. Writes benchmarks/teacher_labeling_results.json.

    nice -n 10 .venv/bin/python benchmarks/teacher_labeling.py --models DIR1 DIR2   # trained pattern models
    ... --models ... --variants fp32,int8 --threads 2
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np

from hostinfo import machine

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT.parent / "shared" / "data" / "lmbff_train_pools" / "SST-2" / "train.tsv"
RESULTS = Path(__file__).with_name("teacher_labeling_results.json")
SHARD, TEMPERATURE = 500, 2.0


def texts(n: int):
    """The README job's unlabeled texts: the SST-2 pool shuffled with seed 0, first n (configs/sst2.yaml)."""
    from pet_io.labeled import load_examples
    from pet_io.sources import DataSpec

    return load_examples(DataSpec(path=str(POOL), text_a="sentence", limit=n, seed=0), labels=None, require_labels=False)


def quantize_for_labeling(pet, per_channel: bool) -> None:
    """int8 dynamic quantization of the Linear layers of a PET model's transformer, in place (the LM head
    stays float32: it runs at one position per text and the label words' scores are read from it)."""
    import torch

    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig if per_channel else torch.ao.quantization.default_dynamic_qconfig
    torch.ao.quantization.quantize_dynamic(pet.model.base_model, {torch.nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)


# partial int8: which Linear modules of the transformer (named as in LlamaModel) are quantized, per-channel
PARTIAL = {
    "int8-no-down": lambda name, n: not name.endswith("mlp.down_proj"),  # down_proj reads SiLU-gated outliers
    "int8-no-ends": lambda name, n: _layer(name) not in (0, 1, n - 2, n - 1),  # first/last 2 of n layers fp32
    "int8-attn": lambda name, n: ".self_attn." in name,  # q/k/v/o only
    "int8-mlp-in": lambda name, n: name.endswith(("mlp.gate_proj", "mlp.up_proj")),
}


def _layer(name: str) -> int:
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else -1


def quantize_partial(pet, variant: str) -> None:
    """Per-channel int8 dynamic quantization of the Linear modules ``PARTIAL[variant]`` picks, in place."""
    import torch

    base = pet.model.base_model
    n = base.config.num_hidden_layers
    names = {name: torch.ao.quantization.per_channel_dynamic_qconfig for name, mod in base.named_modules()
             if isinstance(mod, torch.nn.Linear) and PARTIAL[variant](name, n)}
    torch.ao.quantization.quantize_dynamic(base, names, dtype=torch.qint8, inplace=True)


@contextlib.contextmanager
def cpu_bf16():
    """PETModel.forward's autocast is bf16 on CUDA only: make it bf16 on the CPU too."""
    import torch

    from prompt_models import pet as pet_module

    saved = pet_module.autocast
    pet_module.autocast = lambda device: torch.autocast("cpu", dtype=torch.bfloat16)
    try:
        yield
    finally:
        pet_module.autocast = saved


def label(model_dirs: list[str], examples, variant: str, batch_size: int) -> tuple[np.ndarray, list[np.ndarray], dict]:
    import torch

    from prompt_models.ensemble import merge_logits, soft_labels
    from prompt_models.pet import PETModel

    per_model, times = [], {"load_s": 0.0, "label_s": 0.0}
    for path in model_dirs:
        t0 = time.perf_counter()
        pet = PETModel.load(path)
        if variant in PARTIAL:
            quantize_partial(pet, variant)
        elif variant.startswith("int8"):
            quantize_for_labeling(pet, per_channel=variant == "int8-channel")
        t1 = time.perf_counter()
        if variant == "bf32":  # fp32 tensors, oneDNN's matmuls round their inputs to bf16 (fp32 accumulate/out)
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        try:
            with cpu_bf16() if variant == "bf16" else contextlib.nullcontext():
                logits = np.concatenate([pet.predict_logits(examples[i: i + SHARD], batch_size)
                                         for i in range(0, len(examples), SHARD)])
        finally:
            torch.backends.mkldnn.matmul.fp32_precision = "none"
        times["load_s"] += t1 - t0
        times["label_s"] += time.perf_counter() - t1
        per_model.append(logits)
        del pet
    probs = soft_labels(merge_logits(per_model, [1 / len(per_model)] * len(per_model)), TEMPERATURE)
    return probs, per_model, times


def profile_one_batch(model_dir: str, examples, batch_size: int) -> list[dict]:
    """Self CPU time of the top operators for one fp32 batch of 64 texts."""
    from torch.profiler import ProfilerActivity, profile

    from prompt_models.pet import PETModel

    pet = PETModel.load(model_dir)
    pet.predict_logits(examples[:batch_size], batch_size)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        pet.predict_logits(examples[:batch_size], batch_size)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows)
    return [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in rows[:8]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="trained pattern model folders (PETModel.save)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--variants", default="fp32,int8,int8-channel,bf16")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    examples = texts(args.n)
    rows, ref = [], None
    for variant in args.variants.split(","):
        t0 = time.perf_counter()
        probs, per_model, times = label(args.models, examples, variant, args.batch_size)
        row = {"variant": variant, "seconds": time.perf_counter() - t0, **times,
               "texts_per_s": len(examples) / (time.perf_counter() - t0)}
        if ref is None:
            ref = (probs, per_model)
        row["argmax_agree"] = float((probs.argmax(-1) == ref[0].argmax(-1)).mean())
        row["max_abs_prob_diff"] = float(np.abs(probs - ref[0]).max())
        row["mean_abs_prob_diff"] = float(np.abs(probs - ref[0]).mean())
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "torch_threads": torch.get_num_threads(),
        "n_texts": len(examples), "n_models": len(args.models), "batch_size": args.batch_size,
        "reference": rows[0]["variant"], "rows": rows,
        "profile_fp32_one_batch": profile_one_batch(args.models[0], examples, args.batch_size),
    }
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    print(json.dumps(result["profile_fp32_one_batch"], indent=1))


if __name__ == "__main__":
    main()
