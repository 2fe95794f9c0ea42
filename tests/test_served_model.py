"""The registered classifier as served: the pyfunc model of ``tasks.served_model`` runs the ONNX export in ONNX
Runtime (int8 where the guard accepted it and it runs faster, else fp32) and answers what `pet predict` writes; `pet predict`'s
engines on a version with an ONNX export. Uses predict_registry's registry (tiny classifiers, no flow run)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predict_registry import TEXTS, _register, registry  # noqa: F401 (registry: the fixture)
from test_predict import pet


@pytest.fixture(scope="module")
def onnx_classifier(registry) -> Path:
    """The champion's classifier (clf2) with its ONNX export, the int8 graph and the bf16 model accepted: a
    classifier folder."""
    from prompt_models import onnx_student
    from prompt_models.distill import SequenceClassifier

    folder = registry["root"] / "onnx-clf"
    clf = SequenceClassifier.load(registry["root"] / "clf2")
    clf.save(folder / "model")
    onnx_student.export(clf, folder / "onnx")
    onnx_student.accept(folder / "onnx", "test", 1.0, {"int8": 1.0, "bf16": 1.0})
    return folder


def test_predict_engines_with_an_onnx_export(registry, onnx_classifier, tmp_path, capsys, monkeypatch):
    """A version registered with its ONNX export: `auto` serves the engine timed fastest (here the int8 graph),
    `onnx-fp32` the fp32 graph (the torch numbers), `torch` the torch model, `torch-bf16` it in bf16; a version
    without an export refuses `onnx`."""
    import mlflow

    from pet_config.loading import load_config
    from prompt_models import engines

    # which engine runs fastest on this CPU is timed (test_inference); here the int8 graph is said to
    monkeypatch.setattr(engines, "fastest", lambda found, rows=64: "onnx-int8" if "onnx-int8" in found else next(iter(found)))
    monkeypatch.setattr(engines, "cpu_runs_bf16", lambda: True)  # emulated elsewhere: slow, but a tiny model
    folder = onnx_classifier
    config = load_config(registry["config"], {"tracking.registered_model": "predict-onnx"})
    assert _register(config, folder / "model", "k-onnx") == "1"
    mlflow.MlflowClient(config.tracking_uri()).set_registered_model_alias("predict-onnx", "champion", "1")
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(src, index=False)
    want = registry["expected"]["2"]
    for engine, atol in (("auto", 0.05), ("onnx-fp32", 1e-4), ("torch", 1e-4), ("torch-bf16", 0.05)):
        out = tmp_path / f"{engine}.csv"
        assert pet("predict", registry["config"], src, "-o", out, "--engine", engine, "--json",
                   "--set", "tracking.registered_model=predict-onnx") == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["engine"] == {"auto": "onnx-int8"}.get(engine, engine)
        assert np.allclose(pd.read_csv(out, keep_default_na=False)[["prob_pos", "prob_neg"]].to_numpy(), want, atol=atol)
    assert pet("predict", registry["config"], src, "-o", tmp_path / "x.csv", "--engine", "onnx", "--version", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no ONNX export" in err[0], err

    # the registered model, loaded as `mlflow models serve` loads it, runs the accepted int8 graph in ONNX
    # Runtime and answers what `pet predict` wrote
    served = mlflow.pyfunc.load_model("models:/predict-onnx/1")
    assert served.unwrap_python_model().clf.engine == "onnx-int8"
    got = served.predict(pd.DataFrame({"text": TEXTS}))
    written = pd.read_csv(tmp_path / "auto.csv", keep_default_na=False)
    assert list(got.columns) == ["label", "prob_pos", "prob_neg"]
    assert list(got["label"]) == list(written["label"])
    assert np.allclose(got[["prob_pos", "prob_neg"]].to_numpy(), written[["prob_pos", "prob_neg"]].to_numpy(), atol=1e-7)
    assert not np.allclose(got[["prob_pos", "prob_neg"]].to_numpy(), want, atol=1e-6)  # int8, not the torch numbers
    # an empty text is refused, as `pet predict` and training refuse it, not labeled
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"2 empty text\(s\): row 1 'text', row 2 'text'"):
        served.predict(pd.DataFrame({"text": ["a fine film", "  ", None]}))


def test_auto_leaves_the_bf16_model_out_for_a_small_input(registry, onnx_classifier, tmp_path, capsys, monkeypatch):
    """Loading the torch model to time it in bf16 costs seconds that a small file cannot win back: `pet predict`
    on a file of under MIN_ROWS_FOR_TORCH rows times (and serves) only the ONNX graphs, on a batch no larger than
    the file; the served model (rows unknown) and a large file still have bf16 among the candidates."""
    import mlflow

    from pet_config.loading import load_config
    from prompt_models import engines, onnx_student

    timed = []
    monkeypatch.setattr(engines, "cpu_runs_bf16", lambda: True)
    monkeypatch.setattr(engines, "fastest", lambda found, rows=64: timed.append((sorted(found), rows)) or
                        ("torch-bf16" if "torch-bf16" in found else "onnx-fp32"))
    meta = onnx_student.OnnxMeta.read(onnx_classifier / "onnx")
    assert "torch-bf16" not in engines.choices(meta, "auto", True, engines.MIN_ROWS_FOR_TORCH - 1)
    assert engines.choices(meta, "auto", True, engines.MIN_ROWS_FOR_TORCH)[-1] == "torch-bf16"
    assert engines.choices(meta, "torch-bf16", True, 2) == ["torch-bf16"]  # named: served whatever the size
    config = load_config(registry["config"], {"tracking.registered_model": "predict-small"})
    assert _register(config, onnx_classifier / "model", "k-small") == "1"
    mlflow.MlflowClient(config.tracking_uri()).set_registered_model_alias("predict-small", "champion", "1")
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(src, index=False)
    timed.clear()  # logging the model ran its input example through the served model
    assert pet("predict", registry["config"], src, "-o", tmp_path / "out.csv", "--json",
               "--set", "tracking.registered_model=predict-small") == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "onnx-fp32"
    assert timed == [(["onnx-fp32", "onnx-int8"], len(TEXTS))]
    served = mlflow.pyfunc.load_model("models:/predict-small/1")
    assert served.unwrap_python_model().clf.engine == "torch-bf16"


def test_the_served_model_falls_back_to_fp32_where_int8_and_bf16_were_refused(registry, onnx_classifier, monkeypatch,
                                                                             caplog):
    import mlflow

    from pet_config.loading import load_config
    from prompt_models import engines, onnx_student
    from tasks import served_model

    monkeypatch.setattr(engines, "cpu_runs_bf16", lambda: True)  # bf16 would be a candidate, were it accepted
    folder = registry["root"] / "onnx-refused"
    shutil.copytree(onnx_classifier, folder)
    onnx_student.accept(folder / "onnx", "test", 1.0, {"int8": 0.9, "bf16": 0.9})
    config = load_config(registry["config"], {"tracking.registered_model": "predict-refused"})
    assert _register(config, folder / "model", "k-refused") == "1"
    served = mlflow.pyfunc.load_model("models:/predict-refused/1")
    assert served.unwrap_python_model().clf.engine == "onnx-fp32"
    got = served.predict(pd.DataFrame({"text": TEXTS}))[["prob_pos", "prob_neg"]].to_numpy()
    assert np.allclose(got, registry["expected"]["2"], atol=1e-4)  # the fp32 graph: the torch numbers
    # an accepted int8 graph that does not load (a file lost): not served, one warning, no traceback
    onnx_student.accept(folder / "onnx", "test", 1.0, {"int8": 1.0, "bf16": 0.9})
    (folder / "onnx" / onnx_student.INT8_FILE).unlink()
    artifacts = {"model": str(folder / "model"), "onnx": str(folder / "onnx")}
    assert engines.choices(onnx_student.OnnxMeta.read(folder / "onnx"), "auto", True) == ["onnx-fp32", "onnx-int8"]
    with caplog.at_level("WARNING", logger="tasks.served_model"):
        assert served_model.load_classifier(artifacts).engine == "onnx-fp32"
    assert "onnx-int8 engine could not be loaded" in caplog.text


def test_auto_on_a_gpu_serves_the_torch_model(registry, onnx_classifier, monkeypatch):
    """ONNX Runtime runs on the CPU only here: `auto` with a GPU device is the torch model, on the GPU; on a CPU the
    fastest engine the guard allows (never torch fp32); an engine named is served as named."""
    import torch

    from tasks import served_model

    artifacts = {"model": str(onnx_classifier / "model"), "onnx": str(onnx_classifier / "onnx")}
    assert served_model.load_classifier(artifacts, "auto", "cpu").engine in ("onnx-fp32", "onnx-int8", "torch-bf16")
    moved = []
    monkeypatch.setattr(served_model, "_device", lambda device: torch.device("cuda") if device == "cuda" else torch.device("cpu"))
    monkeypatch.setattr(served_model, "_torch_classifier", lambda artifacts, device, load=None: moved.append(device) or "torch")
    assert served_model.load_classifier(artifacts, "auto", "cuda") == "torch" and moved == ["cuda"]
    assert served_model.load_classifier(artifacts, "onnx-fp32", "cuda").engine == "onnx-fp32"


def test_a_version_registered_with_the_transformers_flavor_still_predicts(registry, tmp_path, capsys):
    """Versions registered before the pyfunc model (transformers flavor, the student's model and tokenizer)
    are still read by `pet predict`, on torch, with the classifier's numbers."""
    import mlflow

    from pet_config.loading import load_config
    from prompt_models.distill import SequenceClassifier
    from tasks import tracking

    clf = SequenceClassifier.load(registry["root"] / "clf2")
    config = load_config(registry["config"], {"tracking.registered_model": "predict-old"})
    with mlflow.start_run(experiment_id=tracking.setup(config)):
        info = mlflow.transformers.log_model({"model": clf.model, "tokenizer": clf.tokenizer}, name="classifier",
                                             task="text-classification", metadata={"max_length": clf.max_length},
                                             pip_requirements=["torch", "transformers"])  # as the old versions did
    version = mlflow.register_model(info.model_uri, "predict-old").version
    mlflow.MlflowClient(config.tracking_uri()).set_registered_model_alias("predict-old", "champion", version)
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(src, index=False)
    assert pet("predict", registry["config"], src, "-o", out, "--json", "--set", "tracking.registered_model=predict-old") == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "torch"
    got = pd.read_csv(out, keep_default_na=False)[["prob_pos", "prob_neg"]].to_numpy()
    assert np.allclose(got, registry["expected"]["2"], atol=1e-4)
