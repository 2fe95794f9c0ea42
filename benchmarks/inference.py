"""CPU inference of the distilled student: ONNX int8 vs ONNX fp32 vs torch fp32 (and torch bf16 where the CPU has
bf16 kernels), and `pet predict` end to end.

Sections (each written to benchmarks/inference_results.json as soon as it is measured; a rerun skips the
sections already there unless --force, so an interrupted run resumes):

* ``student``: the 872 SST-2 test sentences (LM-BFF split) through each engine at batch sizes 1-128 (the one
  inference routine: fast tokenizer in one call, length-sorted batches, dynamic padding); texts/s and
  accuracy. Torch and ONNX run in this process one after the other, same threads.
* ``predict``: ``pet predict CONFIG big.csv --engine E`` as a subprocess (CLI start, model load, CSV read and
  write included) on a CSV of ``--rows`` rows made of the SST-2 sentence pool (6,227 sentences cycled);
  rows/s and peak RSS. ``onnx-int8-forced`` times the int8 graph where the guard refused it (a copy of the
  ONNX folder marked accepted, passed as --model-uri): what int8 would give, not what is served.
  ``--code A,B`` times the `pet predict` of other checkouts too (a before/after in one run), engine by engine
  in turn. The command runs with the environment a user's shell has: TOKENIZERS_PARALLELISM unset (this
  machine's shells set it false for the benchmarks that fork; `pet predict` does not fork).
* ``teacher``: copied from benchmarks/teacher_labeling_results.json (see benchmarks/teacher_labeling.py).

Then benchmarks/inference_texts_per_s.png: texts/s per engine and batch size.

    nice -n 10 .venv/bin/python benchmarks/inference.py --classifier WORK/classifiers/KEY \\
        --config configs/sst2.yaml --set work_dir=WORK
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hostinfo import machine
from tasks_bench import _commit

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEST = SHARED / "data" / "lmbff_kshot" / "SST-2" / "16-42" / "test.tsv"
POOL = SHARED / "data" / "lmbff_train_pools" / "SST-2" / "train.tsv"
RESULTS = Path(__file__).with_name("inference_results.json")
TEACHER = Path(__file__).with_name("teacher_labeling_results.json")
CHART = Path(__file__).with_name("inference_texts_per_s.png")
ENGINES = ("torch", "onnx-fp32", "onnx-int8", "torch-bf16")  # torch-bf16 only where engines.cpu_runs_bf16()


def read_tsv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]


def save(results: dict, path: Path = RESULTS) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)


def engine(name: str, classifier: Path):
    from prompt_models.distill import SequenceClassifier
    from prompt_models.onnx_student import OnnxClassifier

    if name.startswith("torch"):
        clf = SequenceClassifier.load(classifier / "model")
        return clf.in_bf16() if name == "torch-bf16" else clf
    return OnnxClassifier(classifier / "onnx", int8=name == "onnx-int8")


def student(classifier: Path, batch_sizes: list[int], repeats: int) -> dict:
    from prompt_models.engines import cpu_runs_bf16

    rows = read_tsv(TEST)
    texts, gold = [r[0] for r in rows], np.array([int(r[1]) for r in rows])
    out = []
    names = [e for e in ENGINES if e != "torch-bf16" or cpu_runs_bf16()]  # emulated bf16: about 100x slower
    for name in names:
        clf = engine(name, classifier)
        labels = [int(x) for x in clf.labels]
        clf.predict_texts(texts[:64], None, 64)  # warm-up
        for bs in batch_sizes:
            best = float("inf")
            for _ in range(repeats):  # best of: the machine is shared
                t0 = time.perf_counter()
                logits = clf.predict_texts(texts, None, bs)
                best = min(best, time.perf_counter() - t0)
            acc = float((np.array(labels)[logits.argmax(-1)] == gold).mean())
            out.append({"engine": name, "batch_size": bs, "seconds": best, "texts_per_s": len(texts) / best,
                        "accuracy": acc})
            print(json.dumps(out[-1]), flush=True)
        del clf
    by = {(r["engine"], r["batch_size"]): r for r in out}
    speedup = {f"{e}_vs_torch_at_{bs}": by[(e, bs)]["texts_per_s"] / by[("torch", bs)]["texts_per_s"]
               for e in names[1:] for bs in batch_sizes}
    return {"n_texts": len(texts), "repeats": repeats, "rows": out, "speedup": speedup}


def pool_rows(n: int) -> list[str]:
    """``n`` sentences of the SST-2 pool, cycled: the rows of the `pet predict` benchmark's CSV."""
    pool = [r[0] for r in read_tsv(POOL)]
    return [pool[i % len(pool)] for i in range(n)]


def big_csv(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sentence"])
        w.writerows([text] for text in pool_rows(n))


def forced_int8_copy(classifier: Path, folder: Path) -> Path:
    """A served-model folder (the pyfunc model a run registers) whose onnx.json accepts the int8 graph whatever
    the guard said: to time that engine end to end where the run refused it
    (`pet predict --model-uri FOLDER --engine onnx-int8`)."""
    import mlflow

    from prompt_models.onnx_student import OnnxMeta
    from tasks.served_model import PetClassifier

    shutil.copytree(classifier / "onnx", folder / "onnx")
    meta = OnnxMeta.read(folder / "onnx")
    meta.int8_accepted = True
    meta.write(folder / "onnx")
    mlflow.pyfunc.save_model(str(folder / "model"), python_model=PetClassifier(),
                             artifacts={"model": str(classifier / "model"), "onnx": str(folder / "onnx")})
    return folder / "model"


def predict(config: str, overrides: list[str], rows: int, engines: list[str], torch_rows: int, classifier: Path,
            codes: list[Path]) -> dict:
    out = []
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in ((e, c) for e in engines for c in codes):
            n = torch_rows if name == "torch" else rows
            src = Path(tmp) / f"in-{n}.csv"
            if not src.exists():
                big_csv(src, n)
            cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "flows.cli", "predict", str(Path(config).resolve()), str(src),
                   "-o", str(Path(tmp) / "out.csv"), "-q", "--json"]
            if name == "onnx-int8-forced":
                cmd += ["--engine", "onnx-int8", "--model-uri", str(forced_int8_copy(classifier, Path(tmp) / "forced"))]
            else:
                cmd += ["--engine", name]
            for o in overrides:
                cmd += ["--set", o]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=code, capture_output=True, text=True,
                                  env=dict(env, PYTHONPATH=str(code), HF_HUB_OFFLINE="1"))
            seconds = time.perf_counter() - t0
            if proc.returncode:
                raise SystemExit(f"pet predict --engine {name} failed: {proc.stderr[-2000:]}")
            peak = int(proc.stderr.strip().splitlines()[-1]) / 1024
            served = json.loads(proc.stdout)["engine"]
            out.append({"code": _commit(code), "engine": name, "served_by": served, "rows": n, "seconds": seconds, "rows_per_s": n / seconds,
                        "peak_rss_mb": peak})
            print(json.dumps(out[-1]), flush=True)
    return {"input": f"CSV of the SST-2 sentence pool cycled ({POOL.relative_to(SHARED.parent)})", "rows": out}


def chart(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["student"]["rows"]
    sizes = sorted({r["batch_size"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [e for e in ENGINES if any(r["engine"] == e for r in rows)]
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        vals = [next(r["texts_per_s"] for r in rows if r["engine"] == name and r["batch_size"] == b) for b in sizes]
        ax.bar(np.arange(len(sizes)) + k * width, vals, width, label=name)
    ax.set_xticks(np.arange(len(sizes)) + width * (len(names) - 1) / 2, [str(b) for b in sizes])
    ax.set_xlabel("batch size")
    ax.set_ylabel("texts/s (872 SST-2 test sentences)")
    ax.set_title(f"MiniLM-L6 student on {results['machine'].split(' (')[0]}")
    ax.legend()
    fig.tight_layout()
    tmp = CHART.with_name(f".{CHART.stem}.{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(CHART)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classifier", required=True, help="a classifier folder of a pet run (model/ and onnx/)")
    ap.add_argument("--config", required=True, help="the config whose registry `pet predict` reads")
    ap.add_argument("--set", action="append", default=[], help="config overrides for `pet predict`")
    ap.add_argument("--batch-sizes", default="1,8,32,64,128")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--torch-rows", type=int, default=20_000, help="rows for the torch engine (slower)")
    ap.add_argument("--predict-engines", default="auto,onnx-int8-forced,onnx-fp32,torch",
                    help="onnx-int8-forced: the int8 graph even where the guard refused it (timing only)")
    ap.add_argument("--force", action="store_true", help="measure every section again")
    ap.add_argument("--sections", default="student,predict", help="which sections to measure")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results file (the chart is drawn for the default only)")
    ap.add_argument("--load-note", default="", help="what else ran on the machine, written beside its name")
    ap.add_argument("--code", default=str(ROOT), help="checkouts whose `pet predict` is timed, comma-separated")
    args = ap.parse_args()
    out, sections = args.out, args.sections.split(",")
    results = {} if args.force or not out.exists() else json.loads(out.read_text())
    results.update(machine=machine() + (f", {args.load_note}" if args.load_note else ""), classifier=Path(args.classifier).name)
    if "student" in sections and "student" not in results:
        results["student"] = student(Path(args.classifier), [int(b) for b in args.batch_sizes.split(",")], args.repeats)
        results["student"]["date"] = time.strftime("%Y-%m-%d %H:%M")
        save(results, out)
    if "predict" in sections and "predict" not in results:
        results["predict"] = predict(args.config, args.set, args.rows, args.predict_engines.split(","), args.torch_rows,
                                     Path(args.classifier), [Path(c).resolve() for c in args.code.split(",")])
        results["predict"]["date"] = time.strftime("%Y-%m-%d %H:%M")
        save(results, out)
    if out == RESULTS:
        if TEACHER.exists():
            results["teacher"] = json.loads(TEACHER.read_text())
        save(results)
        chart(results)


if __name__ == "__main__":
    main()
