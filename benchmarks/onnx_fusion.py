"""Does ONNX Runtime's transformer fusion (Attention, EmbedLayerNormalization, SkipLayerNormalization, BiasGelu)
make the int8 ONNX student >= 3x the torch fp32 student at batch > 1? Compared on unlabeled texts only (never
test): argmax agreement and max/mean |prob| difference against the run's shipped fp32 graph, and texts/s.

    nice -n 19 .venv/bin/python benchmarks/onnx_fusion.py --work WORK_DIR   # a pet run's work_dir

The shipped fp32 graph (``onnx/model.onnx``) is torch.onnx's export through ``optimize_model``; with torch's
SDPA attention the optimizer fuses only SkipLayerNormalization and BiasGelu (its attention pattern has
IsNaN/Where nodes the Attention fusion does not match). The fused variants re-export the run's torch model
(``model/``) with eager attention, then ``optimize_model(model_type="bert")``, once with num_heads=0 and
hidden_size=0 (inferred) and once with the config's values; the fused op counts are recorded. Variants are scored
at batch 64; speed is texts/s on the first ``--speed-texts`` texts at each batch size, every engine interleaved,
best of ``--repeats``. Results go to benchmarks/onnx_fusion_results.json after every step, so a run resumes.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_int8_fidelity import quantize, softmax, texts_for  # noqa: E402

RESULTS = Path(__file__).with_name("onnx_fusion_results.json")
MACHINE = "2-core CPU VM, no GPU (shared with a long benchmark)"
BATCHES = [1, 8, 32, 64, 128]
SHIPPED_INT8 = dict(weight_only=True, bits=8, block_size=128)  # quantize_weights' defaults (the export)
# name -> (graph it starts from, int8 options or None for fp32)
VARIANTS = {
    "onnx fp32 (shipped graph)": ("shipped", None),
    "onnx int8 MatMulNBits b128 (shipped)": ("shipped", SHIPPED_INT8),
    "fused (inferred heads) fp32": ("fused-inferred", None),
    "fused fp32": ("fused", None),
    "fused + MatMulNBits int8 b128": ("fused", SHIPPED_INT8),
    "fused + dynamic int8 per-channel MatMul": ("fused", dict(per_channel=True, ops=["MatMul"])),
    "fused + dynamic int8 per-channel MatMul+Attention": ("fused", dict(per_channel=True, ops=["MatMul", "Attention"])),
}


def fused_graphs(model_dir: Path, shipped: Path, out: Path) -> dict:
    """Write out/fused.onnx and out/fused-inferred.onnx from the torch model; return fused op counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    from prompt_models.distill import SequenceClassifier
    from prompt_models.onnx_student import OnnxMeta, _export

    clf = SequenceClassifier.load(model_dir)
    clf.model.set_attn_implementation("eager")  # the Attention fusion matches the eager pattern, not SDPA's
    names = OnnxMeta.read(shipped.parent).input_names
    dummy = clf.tokenizer(["an example text", "another, somewhat longer example text"], padding=True, return_tensors="pt")
    _export(clf.model.eval(), dummy, names, out / "raw.onnx", 17)
    stats = {}
    cfg = clf.model.config
    for name, heads, hidden in (("fused-inferred", 0, 0), ("fused", cfg.num_attention_heads, cfg.hidden_size)):
        opt = optimize_model(str(out / "raw.onnx"), model_type="bert", num_heads=heads, hidden_size=hidden)
        opt.save_model_to_file(str(out / f"{name}.onnx"))
        stats[name] = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    opt = optimize_model(str(shipped), model_type="bert", num_heads=0, hidden_size=0)
    stats["shipped"] = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    return stats


def speed(clfs: dict, texts: list[str], rows: dict, repeats: int, save) -> None:
    for r in range(repeats):  # interleaved: a load spike hits every engine alike; a finished round is kept
        key = f"round_{r}"
        if key in rows:
            continue
        got = {}
        for bs in BATCHES:
            for name, clf in clfs.items():
                t0 = time.perf_counter()
                clf.predict_texts(texts, None, bs)
                got.setdefault(name, {})[f"batch_{bs}"] = len(texts) / (time.perf_counter() - t0)
            print(key, bs, {n: round(v[f"batch_{bs}"], 1) for n, v in got.items()}, flush=True)
        rows[key] = got
        save()
    best = {n: {b: max(rows[f"round_{r}"][n][b] for r in range(repeats)) for b in rows["round_0"][n]} for n in clfs}
    rows["best_texts_per_s"] = best
    rows["x_torch"] = {n: {b: v / best["torch fp32"][b] for b, v in best[n].items()} for n in clfs}
    save()


def guard(work: str, model_dir: Path, out: Path) -> dict:
    """The product's export (``onnx_student.export``) of the run's student, and the pet run's int8 guard on its
    test split: accuracy of both graphs. Run once, after the variant was chosen on unlabeled texts."""
    from pet_io.example_files import read_examples
    from prompt_models.distill import SequenceClassifier
    from prompt_models.examples import gold_indices
    from prompt_models.onnx_student import QUANTIZATION, OnnxClassifier, export

    clf = SequenceClassifier.load(model_dir)
    export(clf, out)
    examples = read_examples(glob.glob(f"{work}/data/test-*.jsonl")[0])
    gold = gold_indices(examples, clf.labels)
    acc = {}
    for engine, model in (("torch", clf), ("onnx-fp32", OnnxClassifier(out, False)), ("onnx-int8", OnnxClassifier(out, True))):
        acc[engine] = float((model.predict_texts([ex.text_a for ex in examples], None, 64).argmax(-1) == gold).mean())
    return {"split": "test", "n": len(examples), "export": QUANTIZATION, "accuracy": acc,
            "int8_points_lost": 100 * (acc["onnx-fp32"] - acc["onnx-int8"])}


def main() -> None:
    from prompt_models.distill import SequenceClassifier
    from prompt_models.onnx_student import FP32_FILE, INT8_FILE, OnnxClassifier

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--texts", type=int, default=3000, help="agreement texts (first N of the fidelity set)")
    ap.add_argument("--speed-texts", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--graphs", default=str(Path(__file__).with_name("onnx_fusion_graphs")),
                    help="folder for the variant graphs (kept to resume; git-ignored)")
    ap.add_argument("--guard", action="store_true", help="then the export's test accuracy (once, after choosing)")
    args = ap.parse_args()
    folder = Path(sorted(glob.glob(f"{args.work}/classifiers/*/onnx"))[0])
    texts = texts_for(args.work)[: args.texts]
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(machine=MACHINE, classifier=folder.parent.name, n_texts=len(texts), batch_size=64,
                   texts="the run's unlabeled shards + SST-2 sentence pool, test sentences removed",
                   reference="onnx fp32 (shipped graph)")
    rows = results.setdefault("variants", {})

    def save() -> None:
        tmp = RESULTS.with_name(f".{RESULTS.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(RESULTS)

    graphs = Path(args.graphs)
    graphs.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / FP32_FILE, graphs / "shipped.onnx")
    if "fused_operators" not in results or not (graphs / "fused.onnx").exists():
        results["fused_operators"] = fused_graphs(folder.parent / "model", folder / FP32_FILE, graphs)
        save()
    print("fused operators", results["fused_operators"], flush=True)
    dirs = {}
    for i, (name, (graph, opts)) in enumerate(VARIANTS.items()):
        d = dirs[name] = graphs / f"v{i}"
        if not (d / FP32_FILE).exists():
            tmp = graphs / f".v{i}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(folder, tmp, ignore=shutil.ignore_patterns(FP32_FILE, INT8_FILE))
            shutil.copy(graphs / f"{graph}.onnx", tmp / FP32_FILE)
            if opts:
                quantize(tmp / FP32_FILE, tmp / INT8_FILE, **opts)
            tmp.replace(d)
    ref = OnnxClassifier(dirs["onnx fp32 (shipped graph)"], int8=False).predict_texts(texts, None, 64)
    for name, (graph, opts) in VARIANTS.items():
        if name in rows:
            continue
        got = OnnxClassifier(dirs[name], int8=opts is not None).predict_texts(texts, None, 64)
        diff = np.abs(softmax(got) - softmax(ref)).max(-1)
        rows[name] = {"graph": graph, "int8": opts, "argmax_agreement": float((got.argmax(-1) == ref.argmax(-1)).mean()),
                      "n_flipped": int((got.argmax(-1) != ref.argmax(-1)).sum()),
                      "max_prob_diff": float(diff.max()), "mean_prob_diff": float(diff.mean()),
                      "mb": (dirs[name] / (INT8_FILE if opts else FP32_FILE)).stat().st_size / 2**20}
        print(name, json.dumps(rows[name]), flush=True)
        save()
    torch_clf = SequenceClassifier.load(folder.parent / "model")
    if "torch fp32" not in rows:  # how far the shipped graph itself is from torch
        got = torch_clf.predict_texts(texts, None, 64)
        diff = np.abs(softmax(got) - softmax(ref)).max(-1)
        rows["torch fp32"] = {"argmax_agreement": float((got.argmax(-1) == ref.argmax(-1)).mean()),
                              "max_prob_diff": float(diff.max()), "mean_prob_diff": float(diff.mean())}
        save()
    clfs = {"torch fp32": torch_clf}
    clfs.update({n: OnnxClassifier(dirs[n], int8=opts is not None) for n, (_, opts) in VARIANTS.items()
                 if n != "fused (inferred heads) fp32" or results["fused_operators"]["fused-inferred"].get("Attention")})
    sp = results.setdefault("speed", {"n_texts": args.speed_texts, "batches": BATCHES})
    sp["repeats"] = args.repeats
    speed(clfs, texts[: args.speed_texts], sp, args.repeats, save)
    results["date"] = time.strftime("%Y-%m-%d %H:%M")
    save()
    print(json.dumps(sp["x_torch"], indent=1))
    if args.guard and "guard" not in results:
        results["guard"] = guard(args.work, folder.parent / "model", graphs / "export")
        save()
        print("guard", results["guard"])


if __name__ == "__main__":
    main()
