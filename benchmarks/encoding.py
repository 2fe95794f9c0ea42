"""CPU cost of turning texts into pattern inputs: ``PatternEncoder.encode`` one text at a time
versus ``encode_all`` (one batched call of the fast tokenizer per shard, texts cut at max_length).

On a GPU the forward pass of a ~135M model is cheap enough that this serial CPU work bounds the
labeling rate (benchmarks/RESULTS.md, scaling section), so it is measured on its own here: 5,000
texts of each pool (SST-2 phrases, IMDB reviews), each backbone's 3 patterns, best of 3 runs,
one thread (``--threads`` for the tokenizer's). Both ways must give the same ids, or the run stops.

    OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 .venv/bin/python benchmarks/encoding.py [--threads N]

Rows are appended to benchmarks/encoding_results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.scaling import BACKBONES, load_pool, machine  # noqa: E402

RESULTS = Path(__file__).with_name("encoding_results.json")
N_TEXTS = 5000


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(backbone: str, pool: str, texts: list[str]) -> list[dict]:
    from transformers import AutoConfig, AutoTokenizer

    from prompt_models.examples import InputExample
    from pet_zoo.install import resolve_model_path
    from prompt_models.patterns import Pattern, PatternEncoder

    spec = BACKBONES[backbone]
    folder = resolve_model_path(spec["path"])
    causal = "CausalLM" in " ".join(AutoConfig.from_pretrained(folder).architectures or [])
    tok = AutoTokenizer.from_pretrained(folder)
    enc = PatternEncoder(tok, spec["max_length"], causal=causal)
    examples = [InputExample(t) for t in texts]
    rows = []
    for template in spec["patterns"]:
        pat = Pattern(template)
        one = [enc.encode(pat, ex) for ex in examples]
        if enc.encode_all(pat, examples) != one:
            raise SystemExit(f"{backbone} {template!r}: encode_all differs from encode")
        t_one = best_of(lambda: [enc.encode(pat, ex) for ex in examples])
        t_all = best_of(lambda: enc.encode_all(pat, examples))
        rows.append(dict(backbone=backbone, pool=pool, template=template, n_texts=len(examples),
                         ms_per_text_one_at_a_time=round(1000 * t_one / len(examples), 4),
                         ms_per_text_encode_all=round(1000 * t_all / len(examples), 4),
                         speedup=round(t_one / t_all, 2)))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", default="splade-tiny,smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=1, help="threads of the fast tokenizer (RAYON_NUM_THREADS)")
    args = ap.parse_args(argv)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # read when the tokenizers library starts its pool
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if args.threads > 1 else "false"
    rows = []
    for pool in ("sst2", "imdb"):
        texts = load_pool(pool)[:N_TEXTS]
        for backbone in args.backbones.split(","):
            rows += measure(backbone, pool, texts)
    run = dict(machine=machine("cpu"), tokenizer_threads=args.threads, date=time.strftime("%Y-%m-%d"), rows=rows)
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps(runs + [run], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
