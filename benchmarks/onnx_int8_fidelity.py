"""How close an int8 ONNX student stays to its fp32 graph, per-tensor against per-channel weight scales,
measured on unlabeled texts (never on test): argmax agreement and max |prob| difference.

    .venv/bin/python benchmarks/onnx_int8_fidelity.py --work WORK_DIR   # a pet run's work_dir

Uses the run's classifier ONNX folder and its unlabeled shards (the texts the student was distilled on).
"""
from __future__ import annotations

import argparse
import glob
import shutil
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    import onnx
    import pyarrow.parquet as pq
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from prompt_models.onnx_student import FP32_FILE, INT8_FILE, OnnxClassifier

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    folder = Path(sorted(glob.glob(f"{args.work}/classifiers/*/onnx"))[0])
    texts = [t for f in sorted(glob.glob(f"{args.work}/data/shards/*.parquet")) for t in pq.read_table(f)["text_a"].to_pylist()]
    softmax = lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)
    ref = OnnxClassifier(folder, int8=False).predict_texts(texts, None, 64)
    for per_channel in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(folder, tmp, dirs_exist_ok=True)
            quantize_dynamic(str(folder / FP32_FILE), str(Path(tmp) / INT8_FILE), weight_type=QuantType.QInt8,
                             per_channel=per_channel, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            got = OnnxClassifier(tmp, int8=True).predict_texts(texts, None, 64)
        print(f"per_channel={per_channel}: {len(texts)} texts, argmax agreement "
              f"{(got.argmax(-1) == ref.argmax(-1)).mean():.3f}, max prob diff {np.abs(softmax(got) - softmax(ref)).max():.3f}")


if __name__ == "__main__":
    main()
