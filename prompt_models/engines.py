"""Which engine runs the distilled classifier: the ONNX export's fp32 graph, its int8 graph, the torch model in
fp32, or the torch model with bf16 weights.

The int8 graph and the bf16 model may lose accuracy, so they are offered only where the classifier stage's guard
accepted them (``onnx.json``, ``onnx_student.accept``). Among those, ``auto`` times each on one batch of the
caller's size when the model loads and serves the fastest. Which one wins depends on the CPU and on the batch
(benchmarks/RESULTS.md): weight-only int8 ran 1.2x the fp32 graph at batch 64 on an AVX-512 CPU and 0.55x on an
AVX2 one; bf16 torch ran 1.4x the int8 graph at batch 64 on the AMD AVX512-BF16 CPU and 3.0x the fp32 graph on
the Intel AMX one, but 0.35-0.7x the graphs at batch 1. Neither ONNX Runtime nor torch chooses between two
graphs, or between each other, so the choice is timed here.
"""
from __future__ import annotations

import logging
import time
from typing import Sequence

# no torch at import: `pet predict --help` lists ENGINES (torch is imported where bf16 support is asked)
ENGINES = ("auto", "onnx", "onnx-int8", "onnx-fp32", "torch", "torch-bf16")
# `auto` loads the torch model (to time it in bf16) only for an input of at least this many rows: its load takes
# about 2.5 s (transformers' model code), and bf16 saves MiniLM 0.8-1.6 ms a row over the best ONNX graph on the two
# bf16 CPUs measured (benchmarks/RESULTS.md), so it pays from a few thousand rows; a small model's never pays
MIN_ROWS_FOR_TORCH = 4096
logger = logging.getLogger(__name__)


def cpu_runs_bf16() -> bool:
    """Whether this CPU has oneDNN's bf16 matrix kernels (AVX-512 or AMX). Elsewhere bf16 products are emulated
    at about 1% of the fp32 speed (2.4 GFLOP/s on the AVX2-only CPU), so bf16 is neither checked nor timed there."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def choices(meta, requested: str = "auto", bf16_here: bool = False, rows: int | None = None) -> list[str]:
    """The engines that may serve ``requested``, the reference first: one for a named engine, the candidates
    to time for ``auto`` and ``onnx``. ``meta``: the export's ``OnnxMeta`` (None: no export); ``bf16_here``:
    the device runs bf16 at speed (``cpu_runs_bf16`` on a CPU); ``rows``: how many rows will be labeled (None:
    unknown, as for a served model), under MIN_ROWS_FOR_TORCH ``auto`` leaves bf16 out. A ValueError names what
    the model cannot give."""
    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, not {requested!r}")
    if requested == "torch" or (meta is None and requested == "auto"):
        return ["torch"]
    if meta is None:
        why = " and so no bf16 check" if requested == "torch-bf16" else ""
        raise ValueError(f"engine {requested!r}: the model has no ONNX export{why} (a run with distill.onnx: true "
                         "makes one)")
    if requested == "onnx-int8" and not meta.int8_accepted:
        raise ValueError(f"engine 'onnx-int8': the int8 graph was refused (accuracy {meta.int8_accuracy} against "
                         f"{meta.fp32_accuracy} in fp32 on {meta.guard_split}); use --engine onnx-fp32")
    if requested == "torch-bf16":
        if meta.bf16_accuracy is None:
            raise ValueError("engine 'torch-bf16': not checked for this version (registered before the bf16 check, "
                             "or made on a CPU without bf16 kernels: a version keeps the verdicts it was registered "
                             "with); use --engine torch")
        if not meta.bf16_accepted:
            raise ValueError(f"engine 'torch-bf16': refused (accuracy {meta.bf16_accuracy} against "
                             f"{meta.fp32_accuracy} in fp32 on {meta.guard_split}); use --engine torch")
        if not bf16_here:
            raise ValueError("engine 'torch-bf16': this CPU has no bf16 kernels (AVX-512 or AMX), where bf16 runs "
                             "about 100x slower than fp32; use --engine auto")
    if requested in ("onnx-int8", "onnx-fp32", "torch-bf16"):
        return [requested]
    found = ["onnx-fp32"] + (["onnx-int8"] if meta.int8_accepted else [])
    if requested == "auto" and meta.bf16_accepted and bf16_here and (rows is None or rows >= MIN_ROWS_FOR_TORCH):
        found.append("torch-bf16")
    return found


def run_seconds(clf, texts: Sequence[str]) -> float:
    """Seconds of one run of ``texts`` as one batch."""
    started = time.perf_counter()
    clf.predict_texts(texts, None, len(texts))
    return time.perf_counter() - started


def fastest(classifiers: dict, rows: int = 64, repeats: int = 3, margin: float = 0.9, min_seconds: float = 0.3) -> str:
    """The engine (a key of ``classifiers``, the reference first) that labels a batch of ``rows`` rows (about 24
    tokens each: speed depends on the shape, not the words) fastest; a warm-up, then the best of ``repeats``
    runs, or of as many as fill ``min_seconds`` (at most 50: a small model's batch takes milliseconds, as noisy
    as the differences; splade-tiny's choice flipped on 3 runs), engine by engine in the given order (torch's OpenMP threads may spin on after its runs and slow the next
    engine's, so torch goes last). Another engine must take under ``margin`` of the reference's time: a near tie
    (and its noise) keeps the reference, the fp32 graph, which gives the torch numbers. An engine other than the
    reference that fails to run is left out, with a warning."""
    names = list(classifiers)
    if len(names) == 1:
        return names[0]
    texts = [" ".join(["word"] * 22)] * rows
    best = {}
    for name, clf in classifiers.items():
        try:
            clf.predict_texts(texts, None, rows)  # warm-up
        except Exception as exc:  # noqa: BLE001 (any engine's own error: a kernel missing for this CPU or dtype)
            if name == names[0]:
                raise
            logger.warning("the %s engine failed to run (%s): not served", name, exc)
            continue
        runs = [run_seconds(clf, texts) for _ in range(repeats)]
        while sum(runs) < min_seconds and len(runs) < 50:
            runs.append(run_seconds(clf, texts))
        best[name] = min(runs)
    logger.info("engines timed on a batch of %d rows: %s", rows, ", ".join(f"{n} {s:.3f} s" for n, s in best.items()))
    ref = names[0]
    others = [n for n in best if n != ref and best[n] < margin * best[ref]]
    return min(others, key=best.get) if others else ref
