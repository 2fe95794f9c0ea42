"""The registered classifier as an MLflow pyfunc model: what `mlflow models serve`, `mlflow.pyfunc.load_model`
and `pet predict` run. It answers texts with ``label`` and one ``prob_<label>`` column per label.

Why a ``PythonModel`` with artifacts and not MLflow's onnx flavor: the onnx flavor's pyfunc takes token-id
tensors, so every caller would need the tokenizer, and it serves one fixed graph. The served model has to take
text and serve the int8 graph only where the classifier stage's guard accepted it and it runs faster on the CPU
at hand (else fp32, else torch for a student exported without ONNX), so its artifacts are the student's ONNX folder (both graphs, tokenizer,
``onnx.json`` with the guard's verdict) and the torch model, and ``predict`` is `pet predict`'s own routine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import mlflow
import numpy as np
import pandas as pd

BATCH_SIZE = 64  # rows per forward pass of a served request (pet predict: pet.train.eval_batch_size)


def label_frame(clf, texts_a: Sequence[str], texts_b: Sequence[str] | None, batch_size: int) -> pd.DataFrame:
    """``label`` and ``prob_<label>`` per text: the output of `pet predict` and of the served model."""
    logits = clf.predict_texts(list(texts_a), list(texts_b) if texts_b is not None else None, batch_size)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = pd.DataFrame({"label": [clf.labels[i] for i in probs.argmax(-1)]})
    out[[f"prob_{lab}" for lab in clf.labels]] = probs.astype(np.float64)
    return out


def load_classifier(artifacts: dict, engine: str = "auto", device: str = "auto", load_torch=None):
    """The classifier of a logged model's ``artifacts`` on ``engine`` (``onnx_student.available_engine``;
    a ValueError names an engine the model cannot give). ``auto`` on a GPU is the torch model: ONNX Runtime runs
    on the CPU only here. ``load_torch``: how the torch model is read where ``artifacts["model"]`` is not a saved
    SequenceClassifier (a version registered in the transformers flavor)."""
    from prompt_models import onnx_student

    if engine == "auto" and _device(device).type != "cpu":
        return _torch_classifier(artifacts, device, load_torch)
    onnx_dir = artifacts.get("onnx")
    chosen = onnx_student.available_engine(onnx_dir, engine)
    # on a CPU not timed against the ONNX graph: on the Intel AMX CPU torch ran 1.05-1.37x the graph `auto` chose in
    # two rounds of `pet predict` (MiniLM) and 1.03-1.07x with splade-tiny, inside the VM's spread, for 0.3-1.5 s more
    # start-up, and the choice flipped between runs (benchmarks/RESULTS.md)
    if chosen == "torch":
        return _torch_classifier(artifacts, device, load_torch)
    return onnx_student.OnnxClassifier(onnx_dir, int8=chosen == "onnx-int8")


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

    def classifier(self, engine: str = "auto", device: str = "auto"):
        """The model on another engine or device (`pet predict --engine`, ``model.device``); ``auto`` on
        ``auto`` is the one served."""
        return self.clf if (engine, device) == ("auto", "auto") else load_classifier(self.artifacts, engine, device)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
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
