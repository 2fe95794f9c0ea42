"""Soft-labeling throughput and peak memory: the pipeline's labeling stage versus a plain transformers loop.

Pipeline: ``make_shards`` -> ``label_with_model`` per pattern model (model-major) -> ``merge_shard`` per
shard, called through ``.fn`` (no Prefect/MLflow run around them), on a fresh work_dir each run.
Plain: AutoTokenizer + AutoModelFor{Masked,Causal}LM per pattern model, each text wrapped in the pattern,
tokenized batch by batch in input order (no sorting, caching, sharding or files), hidden states under
torch.inference_mode, the LM head at the prediction position only, label words read there; the
three models' label logits averaged, softmax at T. Both use the same 3 pattern models, batch size
and max_length, and start from the same deduplicated input file; model loading counts in both.

Each (input, method) runs in its own subprocess; it reports its time and peak RSS (VmHWM).
Rows are appended to benchmarks/scaling_results.json.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scaling.py \
        --backbone splade-tiny --sizes 1000,10000,all --imdb all
    ... --backbone smollm2-135m-instruct --sizes 1000 --imdb 1000
    ... --device cuda --batch-size 256 --sizes 1000,10000,all --imdb all   # on a GPU
    ... --core ...   # where Prefect/MLflow/datasets are missing (the lent GPU image): prompt_models alone
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "benchmarks" / "scaling_results.json"
TRAIN = SHARED / "data" / "lmbff_kshot" / "SST-2" / "16-42" / "train.tsv"
SST2_POOL = [SHARED / "data" / "sst2_extra" / "glue_phrase_alps" / f"{s}.tsv" for s in ("train", "dev")]
IMDB_POOL = SHARED / "data" / "imdb" / "unsup.jsonl.gz"

# the patterns and words of configs/sst2-splade-tiny.yaml and of benchmarks/bench_tasks.py (causal)
BACKBONES = {
    "splade-tiny": dict(
        path=str(SHARED / "models" / "splade-tiny"), max_length=96, learning_rate=5e-4,
        patterns=["{text_a} It was {mask} .", "{text_a} All in all , it was {mask} .", "Just {mask} ! {text_a}"],
        words={"0": ["terrible", "bad"], "1": ["great", "good"]}),
    "smollm2-135m-instruct": dict(
        path="smollm2-135m-instruct", max_length=64, learning_rate=3e-5,
        patterns=["{text_a} It was {mask}", "{text_a} All in all, it was {mask}", "Review: {text_a} Verdict: {mask}"],
        words={"0": ["terrible"], "1": ["great"]}),
}
TEMPERATURE, SHARD_SIZE = 2.0, 500


def vm_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine(device: str) -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cpus_visible": os.cpu_count(), "device": device, "host": platform.node()}


# ----------------------------------------------------------------------------------------- inputs
def load_pool(name: str) -> list[str]:
    """Unique texts of a pool (the pipeline drops duplicates itself: both methods get the same rows)."""
    if name == "sst2":
        texts = []
        for path in SST2_POOL:
            with open(path, encoding="utf-8") as fh:
                texts += [row[0] for row in list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]]
    else:
        with gzip.open(IMDB_POOL, "rt", encoding="utf-8") as fh:
            texts = [json.loads(line)["text"] for line in fh]
    return list(dict.fromkeys(texts))


def write_input(pool: str, size: str, folder: Path) -> tuple[Path, int]:
    """The first ``size`` texts of the pool in a fixed shuffled order, as InputExample JSON Lines."""
    texts = load_pool(pool)
    random.Random(0).shuffle(texts)
    texts = texts if size == "all" else texts[: int(size)]
    path = folder / f"{pool}-{size}.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i, t in enumerate(texts):
            fh.write(json.dumps({"text_a": t, "text_b": None, "label": None, "guid": str(i)}) + "\n")
    return path, len(texts)


# ------------------------------------------------------------------------------------ config, models
def make_config(backbone: str, work_dir: Path, device: str, batch_size: int):
    from pet_config.loading import config_from_dict
    from pet_zoo.install import resolve_model_path

    b = BACKBONES[backbone]
    return config_from_dict({
        "name": f"scaling-{backbone}", "labels": ["0", "1"],
        "model": {"path": resolve_model_path(b["path"]), "max_length": b["max_length"], "device": device},
        "data": {"train": {"path": str(TRAIN), "text_a": "sentence", "label": "label"}},
        "patterns": b["patterns"], "verbalizer": {"label_words": b["words"]}, "seeds": [1],
        "pet": {"train": {"learning_rate": b["learning_rate"], "max_steps": 5, "batch_size": 8, "mlm_alpha": 0.0,
                          "eval_batch_size": batch_size, "progress": False},
                "ensemble_weighting": "uniform", "temperature": TEMPERATURE, "shard_size": SHARD_SIZE},
        "tracking": {"tracking_uri": f"sqlite:///{work_dir}/mlflow.db", "experiment": "scaling"},
        "work_dir": str(work_dir),
    })


def setup_models(spec: dict) -> dict:
    """Train the 3 pattern models once (5 steps: quality is irrelevant here) with the pipeline's own task."""
    from tasks.data_tasks import load_and_validate
    from tasks.pattern_tasks import train_pattern_model

    cfg = make_config(spec["backbone"], Path(spec["models_dir"]), spec["device"], spec["batch_size"])
    data = load_and_validate.fn(cfg)
    models = [train_pattern_model.fn(cfg, data, t, i, 1, None) for i, t in enumerate(cfg.patterns)]
    return {"models": [m.to_dict() for m in models], "train_path": data["train"].path}


# --------------------------------------------------------------------------------------- the methods
def run_pipeline(spec: dict, setup: dict) -> tuple[dict, np.ndarray]:
    from tasks.label_tasks import ensemble_key, label_with_model, make_shards, merge_shard, read_soft_labels
    from tasks.records import PatternModelRef

    cfg = make_config(spec["backbone"], Path(spec["work_dir"]), spec["device"], spec["batch_size"])
    models = [PatternModelRef.from_dict(m) for m in setup["models"]]
    base = vm_mb("VmRSS")
    t0 = time.perf_counter()
    shards = make_shards.fn(cfg, spec["input"])
    t1 = time.perf_counter()
    for m in models:
        label_with_model.fn(cfg, m, shards, setup["train_path"])
    t2 = time.perf_counter()
    ens = ensemble_key(models, cfg.pet.ensemble_weighting, cfg.pet.temperature)
    labeled = [merge_shard.fn(cfg, s, models, ens) for s in shards]
    t3 = time.perf_counter()
    _, probs = read_soft_labels([s.path for s in labeled])  # not timed: only for the agreement check
    phases = {"make_shards_s": t1 - t0, "label_s": t2 - t1, "merge_s": t3 - t2, "n_shards": len(shards)}
    return dict(seconds=t3 - t0, rss_base_mb=base, **phases), probs


# --------------------------------------------------------------- without Prefect, MLflow and datasets
# The lent GPU machine's image has torch and transformers but not the orchestration packages, and only
# 64 MiB travels per call. ``--core`` trains the pattern models and labels with ``prompt_models`` alone:
# the computation ``label_with_model`` runs (each model loaded once, ``predict_logits`` per shard of
# SHARD_SIZE texts, sorted by length inside it, batched encoding), minus the Parquet files and tasks.
def setup_core(spec: dict) -> dict:
    from pet_io.sources import DataSpec
    from pet_io.labeled import load_examples
    from pet_zoo.install import resolve_model_path
    from prompt_models.pet import PETModel
    from prompt_models.training import TrainConfig, pick_device, set_seed

    b = BACKBONES[spec["backbone"]]
    train = load_examples(DataSpec(path=str(TRAIN), text_a="sentence", label="label"), list(b["words"]))
    fit = TrainConfig(learning_rate=b["learning_rate"], max_steps=5, batch_size=8, mlm_alpha=0.0, progress=False)
    models = []
    for i, template in enumerate(b["patterns"]):
        set_seed(1)
        pet = PETModel.from_pretrained(resolve_model_path(b["path"]), template, b["words"], b["max_length"])
        pet.to(pick_device(spec["device"]))
        pet.train_model(train, fit, seed=1)
        folder = Path(spec["models_dir"]) / f"core-p{i}"
        pet.save(folder)
        models.append({"model_path": str(folder), "template": template})
    return {"models": models}


def run_core(spec: dict, setup: dict) -> tuple[dict, np.ndarray]:
    from prompt_models.examples import InputExample
    from prompt_models.ensemble import merge_logits, soft_labels
    from prompt_models.pet import PETModel
    from prompt_models.training import pick_device

    with open(spec["input"], encoding="utf-8") as fh:
        examples = [InputExample(json.loads(line)["text_a"]) for line in fh]
    base = vm_mb("VmRSS")
    t0 = time.perf_counter()
    shards = [examples[i: i + SHARD_SIZE] for i in range(0, len(examples), SHARD_SIZE)]
    logits = []
    for m in setup["models"]:
        pet = PETModel.load(m["model_path"])
        pet.to(pick_device(spec["device"]))
        logits.append(np.concatenate([pet.predict_logits(s, spec["batch_size"]) for s in shards]))  # [N, labels]
        del pet
    probs = soft_labels(merge_logits(logits, [1 / len(logits)] * len(logits)), TEMPERATURE)
    return dict(seconds=time.perf_counter() - t0, rss_base_mb=base, n_shards=len(shards)), probs


def plain_label_logits(model_path: str, template: str, words: dict, max_length: int, texts: list[str],
                       batch_size: int, device: str):
    """[N, labels] label scores of one pattern model, the way a short transformers script computes them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    causal = tok.mask_token is None
    model = (AutoModelForCausalLM if causal else AutoModelForMaskedLM).from_pretrained(model_path, dtype=torch.float32)
    model.to(device).eval()
    head = model.cls if hasattr(model, "cls") else model.get_output_embeddings()  # BERT's head has a transform
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def ids(s: str) -> list[int]:
        return tok(s, add_special_tokens=False)["input_ids"] if s else []

    # pattern = before + text + after; a causal LM predicts the label word after `after`
    before, after = template.replace("{mask}", "" if causal else tok.mask_token).split("{text_a}")
    after = after.rstrip() if causal else after
    full, bare = tok("x")["input_ids"], ids("x")
    start = full.index(bare[0])
    pre, post = full[:start] + ids(before), ids(after) + full[start + len(bare):]
    lead = " " if causal and (not before or before[-1].isspace()) else ""  # BPE: " word" after a space
    word_ids = torch.tensor([[ids((" " if causal else "") + w)[0] for w in ws] for ws in words.values()])  # [L, W]
    extra = {"use_cache": False} if causal else {}
    out, lengths = [], []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            body = tok([lead + t for t in texts[i: i + batch_size]], add_special_tokens=False, truncation=True,
                       max_length=max_length - len(pre) - len(post))["input_ids"]
            seqs = [pre + b + post for b in body]
            lengths += map(len, seqs)
            n = max(map(len, seqs))
            input_ids = torch.tensor([s + [pad] * (n - len(s)) for s in seqs], device=device)
            att = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs], device=device)
            pos = att.sum(1) - 1 if causal else (input_ids == tok.mask_token_id).int().argmax(1)
            with torch.autocast(model.device.type, torch.bfloat16, enabled=causal and model.device.type == "cuda"):
                hidden = model.base_model(input_ids=input_ids, attention_mask=att, **extra).last_hidden_state
            logits = head(hidden[torch.arange(len(seqs), device=device), pos].float()).float()
            if causal:
                logits = logits.log_softmax(-1)
            out.append(logits[:, word_ids.to(device)].mean(-1).cpu())  # mean over each label's words
    return torch.cat(out).numpy(), lengths


def padded_tokens(lengths: list[int], batch_size: int, sort_within: int = 0) -> int:
    """Tokens a batch-padded forward processes; with ``sort_within``, in batches of length-sorted chunks
    of that many texts (the pipeline sorts inside each shard)."""
    step = sort_within or len(lengths)
    total = 0
    for start in range(0, len(lengths), step):
        chunk = sorted(lengths[start: start + step]) if sort_within else lengths
        total += sum(max(chunk[i: i + batch_size]) * len(chunk[i: i + batch_size]) for i in range(0, len(chunk), batch_size))
    return total


def run_plain(spec: dict, setup: dict) -> tuple[dict, np.ndarray]:
    # resolved before the clock starts (about 4 s here), as the pipeline's modules do when imported
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM  # noqa: F401 (import time kept off the clock)

    b = BACKBONES[spec["backbone"]]
    with open(spec["input"], encoding="utf-8") as fh:
        texts = [json.loads(line)["text_a"] for line in fh]
    base = vm_mb("VmRSS")
    t0 = time.perf_counter()
    logits, lengths = zip(*[plain_label_logits(m["model_path"], m["template"], b["words"], b["max_length"], texts,
                                               spec["batch_size"], spec["device"]) for m in setup["models"]])
    z = np.mean(logits, 0) / TEMPERATURE
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    seconds = time.perf_counter() - t0
    bs = spec["batch_size"]  # padding, all 3 models: this loop's batches vs the pipeline's sorted shards
    pads = dict(real_tokens=sum(map(sum, lengths)), padded_tokens_input_order=sum(padded_tokens(l, bs) for l in lengths),
                padded_tokens_sorted_in_shards=sum(padded_tokens(l, bs, SHARD_SIZE) for l in lengths))
    return dict(seconds=seconds, rss_base_mb=base, **pads), probs


def child(spec: dict) -> dict:
    """One measured run in this (fresh) process; prints its row."""
    import torch

    torch.set_num_threads(spec["threads"])
    if spec["method"] == "setup":
        return setup_core(spec) if spec.get("core") else setup_models(spec)
    setup = json.loads(Path(spec["setup"]).read_text())
    row, probs = {"pipeline": run_pipeline, "core": run_core, "plain": run_plain}[spec["method"]](spec, setup)
    np.save(spec["probs_out"], probs)
    row.update(peak_rss_mb=vm_mb("VmHWM"), torch_threads=torch.get_num_threads())
    if spec["device"].startswith("cuda"):
        row.update(gpu=torch.cuda.get_device_name(), peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20)
    return row


def spawn(spec: dict) -> dict:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", RAYON_NUM_THREADS=str(spec["threads"]),
               PET_TORCH_THREADS=str(spec["threads"]), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               TRANSFORMERS_VERBOSITY="error", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"child {spec['method']} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default="splade-tiny")
    ap.add_argument("--sizes", default="1000,10000,all", help="SST-2 phrase-pool sizes (comma list; 'all' ~67k)")
    ap.add_argument("--imdb", default="all", help="IMDB unlabeled reviews: a count, 'all' (~50k) or 0 to skip")
    ap.add_argument("--methods", default=None, help="default pipeline,plain (with --core: core,plain)")
    ap.add_argument("--core", action="store_true",
                    help="no Prefect/MLflow/datasets needed: models trained and texts labeled with prompt_models alone")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--batch-size", type=int, default=64, help="the pipeline's eval_batch_size default")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "pet-scaling"),
                    help="scratch folder (models trained once are kept)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child)), default=str))
        return

    work = Path(args.work) / args.backbone
    work.mkdir(parents=True, exist_ok=True)
    common = dict(backbone=args.backbone, device=args.device, batch_size=args.batch_size, threads=args.threads)
    methods = args.methods or ("core,plain" if args.core else "pipeline,plain")
    setup_path = work / ("setup-core.json" if args.core else "setup.json")
    if not setup_path.exists():
        print(f"training 3 pattern models of {args.backbone} (5 steps each)...", file=sys.stderr)
        spec = dict(common, method="setup", core=args.core, models_dir=str(work / "models"))
        setup_path.write_text(json.dumps(spawn(spec)))
    inputs = [("sst2", s) for s in args.sizes.split(",") if s] + ([("imdb", args.imdb)] if args.imdb != "0" else [])
    rows = []
    for pool, size in inputs:
        path, n = write_input(pool, size, work)
        probs = {}
        for method in methods.split(","):
            run_dir = work / f"run-{pool}-{size}-{method}"
            shutil.rmtree(run_dir, ignore_errors=True)
            spec = dict(common, method=method, input=str(path), setup=str(setup_path), work_dir=str(run_dir),
                        probs_out=str(work / f"probs-{pool}-{size}-{method}.npy"))
            print(f"{args.backbone} {pool}:{size} ({n} texts) {method}...", file=sys.stderr, flush=True)
            r = spawn(spec)
            shutil.rmtree(run_dir, ignore_errors=True)
            probs[method] = spec["probs_out"]
            rows.append(dict(r, backbone=args.backbone, method=method, pool=pool, size=size, n_texts=n,
                             n_models=3, texts_per_s=n / r["seconds"], s_per_1k=1000 * r["seconds"] / n,
                             max_length=BACKBONES[args.backbone]["max_length"], batch_size=args.batch_size,
                             shard_size=SHARD_SIZE, cores_used=args.threads, machine=machine(args.device),
                             date=time.strftime("%Y-%m-%d %H:%M")))
            print(f"  {r['seconds']:.1f} s, {n / r['seconds']:.0f} texts/s, peak RSS {r['peak_rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)
        if len(probs) == 2:  # same work: the two methods' soft labels should agree
            a, b = (np.load(p) for p in probs.values())
            for r in rows[-2:]:
                r.update(max_abs_prob_diff=float(np.abs(a - b).max()), argmax_agree=float((a.argmax(1) == b.argmax(1)).mean()))
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps(old + rows, indent=1) + "\n")
    print("| backbone | input | texts | method | s | texts/s | s per 1k | peak RSS MB | base RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backbone']} | {r['pool']}:{r['size']} | {r['n_texts']} | {r['method']} | {r['seconds']:.1f} | "
              f"{r['texts_per_s']:.0f} | {r['s_per_1k']:.2f} | {r['peak_rss_mb']:.0f} | {r['rss_base_mb']:.0f} |")


if __name__ == "__main__":
    main()
