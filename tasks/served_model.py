"""The registered classifier as an MLflow pyfunc model: what `mlflow models serve`, `mlflow.pyfunc.load_model`
and `pet predict` run. It answers texts with ``label`` and one ``prob_<label>`` column per label.

Why a ``PythonModel`` with artifacts and not MLflow's onnx flavor: the onnx flavor's pyfunc takes token-id
tensors, so every caller would need the tokenizer, and it serves one fixed graph. The served model has to take
text and serve the fastest engine on the CPU at hand among those the classifier stage's guard allows
(``prompt_models.engines``: the int8 graph, the torch model in bf16, else the fp32 graph; torch for a student
exported without ONNX), so its artifacts are the student's ONNX folder (both graphs, tokenizer, ``onnx.json`` with
the guard's verdicts) and the torch model, and ``predict`` is `pet predict`'s own routine.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import mlflow
import numpy as np
import pandas as pd

BATCH_SIZE = 64  # rows per forward pass of a served request (pet predict: pet.train.eval_batch_size)
# the batch the served model's engines are timed on: a request to `mlflow models serve` is a few rows, where the
# ONNX graphs beat bf16 torch on the AMD CPU (batch 8: 461 against 335 texts/s) and not on the Intel AMX one
REQUEST_ROWS = 8
MAX_TIMED_ROWS = 128  # larger batches run at the same speed per row (benchmarks/RESULTS.md): no longer timings
logger = logging.getLogger(__name__)


def label_frame(clf, texts_a: Sequence[str], texts_b: Sequence[str] | None, batch_size: int) -> pd.DataFrame:
    """``label`` and ``prob_<label>`` per text: the output of `pet predict` and of the served model."""
    logits = clf.predict_texts(list(texts_a), list(texts_b) if texts_b is not None else None, batch_size)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = pd.DataFrame({"label": [clf.labels[i] for i in probs.argmax(-1)]})
    out[[f"prob_{lab}" for lab in clf.labels]] = probs.astype(np.float64)
    return out


def load_classifier(artifacts: dict, engine: str = "auto", device: str = "auto", load_torch=None,
                    batch_size: int = REQUEST_ROWS, rows: int | None = None):
    """The classifier of a logged model's ``artifacts`` on ``engine`` (``engines.choices``; a ValueError names an
    engine the model cannot give); ``auto``: the fastest of those the guard allows, timed on ``batch_size`` rows
    (at most MAX_TIMED_ROWS, and at most ``rows``, the input's size where it is known: a small input leaves the
    torch model out, ``engines.MIN_ROWS_FOR_TORCH``). ``auto`` on a GPU is the torch model: ONNX Runtime runs on
    the CPU only here.
    ``load_torch``: how the torch model is read where ``artifacts["model"]`` is not a saved SequenceClassifier (a
    version registered in the transformers flavor)."""
    import torch

    from prompt_models import engines, onnx_student

    on_cpu = _device(device).type == "cpu"
    if engine == "auto" and not on_cpu:
        return _torch_classifier(artifacts, device, load_torch)
    onnx_dir = artifacts.get("onnx")
    meta = onnx_student.OnnxMeta.read(onnx_dir) if onnx_dir and (Path(onnx_dir) / onnx_student.META_FILE).exists() else None
    # torch fp32 is not among auto's candidates on a CPU: on the Intel AMX CPU it ran 1.05-1.37x the graph `auto`
    # chose in two rounds of `pet predict` (MiniLM) and 1.03-1.07x with splade-tiny, inside the VM's spread, for
    # 0.3-1.5 s more start-up, and the choice flipped between runs (benchmarks/RESULTS.md)
    bf16_here = engines.cpu_runs_bf16() if on_cpu else torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    names = engines.choices(meta, engine, bf16_here, rows)
    loaders = {"torch": lambda: _torch_classifier(artifacts, device, load_torch),
               "torch-bf16": lambda: _torch_classifier(artifacts, device, load_torch).in_bf16(),
               "onnx-fp32": lambda: onnx_student.OnnxClassifier(onnx_dir, False),
               "onnx-int8": lambda: onnx_student.OnnxClassifier(onnx_dir, True)}
    loaded = {}
    for name in names:
        try:
            loaded[name] = loaders[name]()
        except Exception as exc:  # noqa: BLE001 (onnxruntime's own errors: a graph file missing or unreadable)
            if name == names[0]:
                raise
            logger.warning("the %s engine could not be loaded (%s): not served", name, exc)
    return loaded[engines.fastest(loaded, max(1, min(batch_size, MAX_TIMED_ROWS, rows or batch_size)))]


def _device(device: str):
    from prompt_models.training import pick_device

    return pick_device(device)


def _torch_classifier(artifacts: dict, device: str, load_torch=None):
    # the torch model's code is imported only for it: transformers' model classes took 2.5 s of an ONNX start
    from prompt_models.distill import SequenceClassifier

    clf = load_torch() if load_torch else SequenceClassifier.load(artifacts["model"])
    clf.model.to(_device(device)).eval()
    return clf


class PetClassifier(mlflow.pyfunc.PythonModel):
    """Input: a ``text`` column (and ``text_pair`` for pair tasks). Output: ``label`` and ``prob_<label>``."""

    def load_context(self, context) -> None:
        self.artifacts = dict(context.artifacts)
        self._served = None

    @property
    def clf(self):
        """The served classifier: the fastest engine the guard allows (``auto``), loaded on first use, so that
        `pet predict --engine E` loads (and times) only what it runs."""
        if self._served is None:
            self._served = load_classifier(self.artifacts)
        return self._served

    def classifier(self, engine: str = "auto", device: str = "auto", batch_size: int = REQUEST_ROWS,
                   rows: int | None = None):
        """The model on another engine, device or batch size (`pet predict --engine`, ``model.device``,
        ``--batch-size``: ``auto`` times the engines on it) for ``rows`` rows (None: unknown); ``auto`` on ``auto``
        at REQUEST_ROWS for unknown rows is the one served."""
        if (engine, device, batch_size, rows) == ("auto", "auto", REQUEST_ROWS, None):
            return self.clf
        return load_classifier(self.artifacts, engine, device, batch_size=batch_size, rows=rows)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from pet_io.sources import empty_text

        columns = ["text"] + (["text_pair"] if "text_pair" in model_input else [])
        # refused as `pet predict` and training refuse them (a request answers 400 with this line), not labeled
        empty = [f"row {i} {c!r}" for c in columns for i, v in enumerate(model_input[c]) if empty_text(v)]
        if empty:
            raise mlflow.exceptions.MlflowException.invalid_parameter_value(
                f"{len(empty)} empty text(s): {', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''}")
        pairs = model_input["text_pair"].astype(str).tolist() if "text_pair" in model_input else None
        return label_frame(self.clf, model_input["text"].astype(str).tolist(), pairs, BATCH_SIZE)


def log_classifier(clf, model_dir: str | Path, onnx_dir: str | Path | None, text_pair: bool, metadata: dict):
    """Log the classifier (``model_dir``: a saved ``SequenceClassifier``; ``onnx_dir``: its ONNX export or
    None) as the pyfunc model ``classifier`` of the active run; returns MLflow's ModelInfo."""
    import onnxruntime
    import torch
    import transformers
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    example = {"text": ["an example text to classify"]}
    if text_pair:
        example["text_pair"] = ["its paired text"]
    # written out, not inferred from the example: MLflow infers it under a SIGALRM timeout, which fails in a
    # Prefect worker thread and falls back to an unnamed column
    signature = ModelSignature(
        inputs=Schema([ColSpec("string", name) for name in example]),
        outputs=Schema([ColSpec("string", "label")] + [ColSpec("double", f"prob_{lab}") for lab in clf.labels]),
    )
    artifacts = {"model": str(model_dir)}
    if onnx_dir is not None:
        artifacts["onnx"] = str(onnx_dir)
    return mlflow.pyfunc.log_model(
        name="classifier",
        python_model=str(Path(__file__).with_name("served_model_code.py")),  # PetClassifier, not pickled
        artifacts=artifacts,
        signature=signature,
        input_example=pd.DataFrame(example),  # MLflow runs it through the logged model (a warning if it fails)
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"transformers=={transformers.__version__}",
                          f"onnxruntime=={onnxruntime.__version__}", "pandas"],
        metadata=metadata,
    )
