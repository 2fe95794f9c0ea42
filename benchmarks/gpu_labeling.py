"""Soft-labeling throughput of a 3-model SmolLM2-135M ensemble on a GPU: the product's labeling path
(``prompt_models`` alone: ``PETModel.predict_logits``, length-sorted batches, bf16 autocast) against a plain
transformers loop on the same models, in the same process. Needs only torch and transformers (and numpy,
tqdm), so it runs on the lent device's image, and carries no weights:

* each pattern model is ``AutoModelForCausalLM.from_config(benchmarks/assets/smollm2-135m/config.json)``
  with random weights (seeds 0, 1, 2): the same architecture and parameter count as the real model, hence
  the same cost (a test checks the count); the tokenizer files are carried there too (3.5 MB);
* texts: benchmarks/assets/sst2_phrases.txt.gz (8,192 GLUE SST-2 phrases) and imdb_reviews.txt.gz
  (4,096 IMDB reviews, unsup split), one text per line.

Both methods see the same texts, batch size, max_length and models; throughput is texts/s for the whole
3-model ensemble, model loading excluded (the models are built once), after an untimed warm-up pass over
the same texts per model (every batch shape met once); the two methods alternate which goes first.
Soft labels of the two methods are compared (argmax agreement, max |prob| difference).

The device command (one call; 235 s on an H200 with a one-batch warm-up, about twice that with
the full warm-up pass now used; results come back under $OUT):

    python benchmarks/gpu_labeling.py --device cuda --out $OUT/gpu_labeling_results.json

A CPU dry run (1 layer, 8 texts, batches 4 and 8; seconds on an idle CPU) checks the whole script:

    python benchmarks/gpu_labeling.py --dry-run --out gpu_dry.json
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # prompt_models from this checkout, without installing it
from pet_io.atomic import atomic_path, write_json_atomic  # noqa: E402 (stdlib + numpy only: runs on the device)

ASSETS = Path(__file__).with_name("assets")
BACKBONE = ASSETS / "smollm2-135m"
TEXTS = {"sst2": ASSETS / "sst2_phrases.txt.gz", "imdb": ASSETS / "imdb_reviews.txt.gz"}
MAX_LENGTH = {"sst2": 64, "imdb": 256}
PATTERNS = ["{text_a} It was {mask}", "{text_a} All in all, it was {mask}", "Review: {text_a} Verdict: {mask}"]
WORDS = {"0": ["terrible"], "1": ["great"]}
TEMPERATURE = 2.0
CHART = Path(__file__).with_name("gpu_labeling_texts_per_s.png")


def read_texts(name: str, n: int | None) -> list[str]:
    with gzip.open(TEXTS[name], "rt", encoding="utf-8") as fh:
        texts = [line.rstrip("\n") for line in fh if line.strip()]
    return texts[:n] if n else texts


def random_lm(seed: int, layers: int | None = None):
    """The backbone's architecture with random weights (float32 master weights, as the product loads)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(BACKBONE))
    if layers:
        config.num_hidden_layers = layers
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def pattern_models(device: str, max_length: int, layers: int | None):
    from prompt_models.backbones import load_tokenizer
    from prompt_models.patterns import Pattern
    from prompt_models.pet import PETModel
    from prompt_models.verbalizer import Verbalizer

    tok = load_tokenizer(BACKBONE)
    return [PETModel(random_lm(i, layers), tok, Pattern(p), Verbalizer(WORDS), max_length).to(device).eval()
            for i, p in enumerate(PATTERNS)]


def product_logits(pet, texts: list[str], batch_size: int) -> np.ndarray:
    from prompt_models.examples import InputExample

    return pet.predict_logits([InputExample(t) for t in texts], batch_size)


@torch.inference_mode()
def plain_logits(pet, texts: list[str], batch_size: int) -> np.ndarray:
    """A short transformers loop (as benchmarks/scaling.py's): pattern ids + truncated text ids per batch in
    input order, padded right, bf16 autocast, the LM head at the last real position, log-softmax, the label
    words' first tokens."""
    tok, model = pet.tokenizer, pet.model
    before, after = pet.pattern.template.replace("{mask}", "").split("{text_a}")
    pre = tok(before, add_special_tokens=False)["input_ids"] if before else []
    post = tok(after.rstrip(), add_special_tokens=False)["input_ids"]
    lead = " " if not before or before[-1].isspace() else ""  # byte-level BPE: " word" after a space
    word_ids = torch.tensor([tok(" " + ws[0], add_special_tokens=False)["input_ids"][0] for ws in WORDS.values()])
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        body = tok([lead + t for t in texts[i: i + batch_size]], add_special_tokens=False, truncation=True,
                   max_length=pet.max_length - len(pre) - len(post))["input_ids"]
        seqs = [pre + b + post for b in body]
        n = max(map(len, seqs))
        ids = torch.tensor([s + [tok.pad_token_id] * (n - len(s)) for s in seqs], device=dev)
        att = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs], device=dev)
        with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == "cuda"):
            hidden = model.base_model(input_ids=ids, attention_mask=att, use_cache=False).last_hidden_state
        last = att.sum(1) - 1
        logits = model.lm_head(hidden[torch.arange(len(seqs), device=dev), last].to(model.lm_head.weight.dtype))
        logits = logits.float().log_softmax(-1)
        out.append(logits[:, word_ids.to(dev)].cpu())
    return torch.cat(out).numpy()


def soft(logits: list[np.ndarray]) -> np.ndarray:
    z = np.mean(logits, 0) / TEMPERATURE
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def timed(fn, models, texts: list[str], batch_size: int, device: str) -> tuple[float, np.ndarray]:
    for m in models:  # warm-up over every batch shape the timed pass meets: kernels chosen, pools grown
        fn(m, texts, batch_size)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    logits = [fn(m, texts, batch_size) for m in models]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, soft(logits)


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} ({platform.node()})"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "cpu")
    return f"{os.cpu_count()}-core CPU ({cpu}), no GPU"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-sizes", default="64,128,256,512,1024")
    ap.add_argument("--datasets", default="sst2,imdb")
    ap.add_argument("--n", type=int, default=0, help="texts per dataset (0: all carried)")
    ap.add_argument("--weights", choices=["fp32", "bf16"], default="fp32",
                    help="fp32 master weights under bf16 autocast (as trained), or the models cast to bf16")
    ap.add_argument("--chart", nargs="+", metavar="RESULTS_JSON",
                    help="only draw benchmarks/gpu_labeling_texts_per_s.png from these results files")
    ap.add_argument("--dry-run", action="store_true", help="CPU, 1 layer, 8 texts, batches 4,8: checks the script")
    ap.add_argument("--out", default=str(Path(__file__).with_name("gpu_labeling_results.json")))
    args = ap.parse_args(argv)
    if args.chart:
        return chart([json.loads(Path(p).read_text()) for p in args.chart], CHART)
    layers = None
    if args.dry_run:
        args.device, args.batch_sizes, args.n, layers = "cpu", "4,8", 8, 1
    rows = []
    result = {"machine": machine(args.device), "device": args.device, "dry_run": args.dry_run,
              "dtype": ("bf16 autocast" if args.device.startswith("cuda") else "float32") + f", {args.weights} weights",
              "torch": torch.__version__, "transformers": transformers.__version__,
              "date": time.strftime("%Y-%m-%d %H:%M"),
              "backbone": "SmolLM2-135M architecture, random weights" + (f", {layers} layers" if layers else ""),
              "rows": rows}
    for name in args.datasets.split(","):
        texts = read_texts(name, args.n or None)
        models = pattern_models(args.device, MAX_LENGTH[name], layers)
        if args.weights == "bf16":
            models = [m.to(torch.bfloat16) for m in models]
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            row = {"dataset": name, "batch_size": bs, "n_texts": len(texts), "n_models": len(models),
                   "max_length": MAX_LENGTH[name]}
            methods = [("product", product_logits), ("plain", plain_logits)]
            for method, fn in methods[:: 1 if len(rows) % 2 == 0 else -1]:  # neither always goes first
                if args.device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                seconds, probs = timed(fn, models, texts, bs, args.device)
                row[f"{method}_texts_per_s"] = len(texts) / seconds
                row[f"{method}_s"] = seconds
                row[f"{method}_probs"] = probs
                if args.device.startswith("cuda"):
                    row[f"{method}_peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
            p, q = row.pop("product_probs"), row.pop("plain_probs")
            row["argmax_agree"] = float((p.argmax(-1) == q.argmax(-1)).mean())
            row["max_abs_prob_diff"] = float(np.abs(p - q).max())
            row["prob_std"] = float(p[:, 0].std())  # soft labels that vary, so equal ones say something
            row["product_vs_plain"] = row["product_texts_per_s"] / row["plain_texts_per_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
            write_json_atomic(args.out, result, indent=1)  # each row as it comes: a device call cut short keeps them
        del models
    return result


def chart(results: list[dict], png: Path) -> dict:
    """Texts/s of the 3-model ensemble per batch size: one panel per dataset, a line per method and dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["dataset"] for res in results for r in res["rows"]}, reverse=True)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for res in results:
            rows = [r for r in res["rows"] if r["dataset"] == name]
            for method, style in (("product", "-o"), ("plain", "--s")):
                ax.plot([r["batch_size"] for r in rows], [r[f"{method}_texts_per_s"] for r in rows], style,
                        label=f"{method}, {res['dtype']}")
        ax.set(xscale="log", xlabel="batch size", ylabel="texts/s (3 models)", title=name)
        ax.set_xticks([64, 128, 256, 512, 1024], ["64", "128", "256", "512", "1024"])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Soft-labeling, SmolLM2-135M x 3, {results[0]['machine']}; each results file a separately"
                 " started machine", fontsize=9)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return {"chart": str(png)}


if __name__ == "__main__":
    main()
