"""Would a bf16 torch student beat the ONNX graphs `pet predict` serves, on a CPU with AMX or AVX512-BF16?

Speed only, not accuracy: all-MiniLM-L6-v2 (the default student) with an untrained 2-label head, so the
figures say what each engine costs, not what it gets right. Engines, one process, interleaved per round,
best of ``--rounds``, 2 threads each: torch fp32 (the torch engine), torch with bf16 weights, ONNX fp32
and ONNX int8 (the export `pet run` writes, ``onnx_student.export``). Texts: the 872 SST-2 test sentences
of split 16-42 (200 at batch 1), through each engine's ``predict_texts`` (tokenizing and batching included).
Also the bf16 engine's argmax agreement and max probability difference against torch fp32 on the same texts
(an untrained head: a lower bound on what rounding moves, not a guard).

    .venv/bin/python benchmarks/student_bf16.py [--out benchmarks/student_bf16_results.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from hostinfo import cpu_features, machine  # noqa: E402
from inference import TEST, read_tsv  # noqa: E402 (the 872 SST-2 test sentences inference.py times)

STUDENT = Path("~/.cache/pet-pipeline/models/all-minilm-l6-v2").expanduser()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("student_bf16_results.json"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-sizes", default="1,8,64")
    args = ap.parse_args()
    from prompt_models import onnx_student
    from prompt_models.distill import SequenceClassifier

    torch.manual_seed(0)
    torch.set_num_threads(2)
    texts = [row[0] for row in read_tsv(TEST)]
    clf = SequenceClassifier.from_pretrained(str(STUDENT), ["0", "1"], 64)
    with tempfile.TemporaryDirectory() as tmp:
        folder = onnx_student.export(clf, Path(tmp) / "onnx")
        engines = {"torch-fp32": clf, "torch-bf16": clf.in_bf16(),
                   "onnx-fp32": onnx_student.OnnxClassifier(folder, False),
                   "onnx-int8": onnx_student.OnnxClassifier(folder, True)}
        rows = []
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            sample = texts[:200] if batch == 1 else texts
            best = {name: float("inf") for name in engines}
            for name, engine in engines.items():
                engine.predict_texts(sample[:batch * 2], None, batch)  # warm-up
            for _ in range(args.rounds):
                for name, engine in engines.items():
                    started = time.perf_counter()
                    engine.predict_texts(sample, None, batch)
                    best[name] = min(best[name], time.perf_counter() - started)
            for name, seconds in best.items():
                rows.append({"engine": name, "batch_size": batch, "texts": len(sample), "seconds": seconds,
                             "texts_per_s": len(sample) / seconds, "x_torch_fp32": best["torch-fp32"] / seconds})
                print(json.dumps(rows[-1]), flush=True)
        fp32 = clf.predict_texts(texts, None, 64)
        bf16 = engines["torch-bf16"].predict_texts(texts, None, 64)
    fidelity = {"argmax_agreement": float((fp32.argmax(-1) == bf16.argmax(-1)).mean()),
                "max_prob_diff": float(abs(fp32 - bf16).max()), "texts": len(texts), "note": "untrained head"}
    out = {"machine": machine(), "cpu_flags": cpu_features(), "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows, "bf16_against_fp32": fidelity}
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(fidelity))


if __name__ == "__main__":
    main()
