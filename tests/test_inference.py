"""The one inference routine (sorting, OOM halving), the ONNX student (export, engine choice, int8 guard),
and the GPU benchmark's random-weight models and dry run."""
import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import REPO, toy_examples


# ------------------------------------------------------------------------------------ run_batches
def test_rows_run_sorted_by_length_and_come_back_in_input_order():
    from prompt_models.inference import run_batches

    lengths = [5, 1, 4, 1, 3, 9, 2]
    seen = []

    def run(idx):
        seen.append([lengths[i] for i in idx])
        return np.stack([np.array(idx, np.float32), np.array([lengths[i] for i in idx], np.float32)], 1)

    out = run_batches(lengths, run, batch_size=3, width=2)
    assert seen == [[1, 1, 2], [3, 4, 5], [9]]  # shortest first, each batch of similar lengths
    assert out[:, 0].tolist() == list(range(len(lengths)))  # row i holds row i's scores
    assert out[:, 1].tolist() == lengths


def test_out_of_memory_halves_the_batch_and_redoes_it():
    from prompt_models.inference import run_batches

    sizes = []

    def run(idx):
        sizes.append(len(idx))
        if len(idx) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return torch.tensor([[float(i)] for i in idx])

    out = run_batches([3] * 10, run, batch_size=8, width=1)
    assert sizes[:3] == [8, 4, 2] and set(sizes[3:]) <= {2}
    assert out[:, 0].tolist() == list(range(10))

    def always(idx):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.cuda.OutOfMemoryError):  # at batch size 1 there is nothing left to halve
        run_batches([1, 2], always, batch_size=2, width=1)
    with pytest.raises(ValueError, match="boom"):  # other errors are not retried
        run_batches([1], lambda idx: (_ for _ in ()).throw(ValueError("boom")), batch_size=4, width=1)


def test_the_three_classifier_paths_share_the_routine():
    import inspect

    from flows import predict
    from prompt_models import distill, onnx_student, pet
    from tasks import served_model

    for module in (pet, distill, onnx_student):
        assert "run_batches(" in inspect.getsource(module)
    # pet predict labels through the served model's label_frame, which calls the classifiers' predict_texts: no
    # loop of its own
    assert "argsort" not in inspect.getsource(predict) and "label_frame(" in inspect.getsource(predict)
    assert "clf.predict_texts(" in inspect.getsource(served_model.label_frame)


# ------------------------------------------------------------------------------------ ONNX student
@pytest.fixture(scope="module")
def exported(tiny_model_dir, tmp_path_factory):
    from prompt_models import onnx_student
    from prompt_models.distill import SequenceClassifier

    torch.manual_seed(0)
    clf = SequenceClassifier.from_pretrained(str(tiny_model_dir), ["neg", "pos"], 32)
    folder = onnx_student.export(clf, tmp_path_factory.mktemp("onnx") / "onnx")
    return clf, folder


def test_onnx_export_gives_the_torch_logits(exported):
    from prompt_models.onnx_student import OnnxClassifier

    clf, folder = exported
    texts = [ex.text_a for ex in toy_examples()] + ["", "the movie was great and the actors were really very good"]
    want = clf.predict_texts(texts, None, batch_size=5)
    fp32 = OnnxClassifier(folder, int8=False).predict_texts(texts, None, batch_size=3)
    assert np.allclose(fp32, want, atol=1e-4)
    int8 = OnnxClassifier(folder, int8=True).predict_texts(texts, None, batch_size=64)
    assert np.abs(int8 - want).max() < 0.02  # weights (and, per block, activations) in int8: close, not equal
    assert not np.allclose(int8, want, atol=1e-6)  # it is the quantized graph that ran
    assert not list(folder.parent.glob(".onnx.*"))  # no temp folder left


def test_the_int8_graph_is_weight_only_int8_in_blocks(exported):
    """The int8 copy is the configuration chosen on unlabeled texts (benchmarks/onnx_int8_fidelity.py): every
    MatMul by a weight becomes MatMulNBits, 8 bits, blocks of 128, int8 compute (accuracy level 4)."""
    import onnx

    _, folder = exported
    fp32 = onnx.load(str(folder / "model.onnx")).graph
    weights = {i.name for i in fp32.initializer}
    n_weight_matmuls = sum(n.op_type == "MatMul" and n.input[1] in weights for n in fp32.node)
    int8 = onnx.load(str(folder / "model_int8.onnx")).graph
    nbits = [n for n in int8.node if n.op_type == "MatMulNBits"]
    assert n_weight_matmuls > 0 and len(nbits) == n_weight_matmuls
    for node in nbits:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (8, 128, 4)
    left = {i.name for i in int8.initializer}
    assert not [n for n in int8.node if n.op_type == "MatMul" and n.input[1] in left]  # no fp32 weight MatMul left


def _meta(folder: Path, **fields):
    from prompt_models.onnx_student import OnnxMeta

    meta = OnnxMeta.read(folder)
    for k, v in fields.items():
        setattr(meta, k, v)
    meta.write(folder)


def test_engine_choice(exported):
    """Which engines may serve a request: a named one if the export and the guard allow it, else a one-line
    error; for auto/onnx, the candidates to time, the fp32 graph first (the reference)."""
    from prompt_models.engines import choices
    from prompt_models.onnx_student import OnnxMeta

    _, folder = exported
    assert choices(None) == ["torch"] and choices(None, "torch") == ["torch"]
    for engine in ("onnx", "onnx-fp32", "torch-bf16"):
        with pytest.raises(ValueError, match="no ONNX export"):
            choices(None, engine)
    meta = OnnxMeta.read(folder)
    meta.int8_accepted, meta.bf16_accuracy, meta.bf16_accepted = True, 0.9, True
    assert choices(meta, "auto", bf16_here=True) == ["onnx-fp32", "onnx-int8", "torch-bf16"]
    assert choices(meta, "auto", bf16_here=False) == ["onnx-fp32", "onnx-int8"]  # bf16 emulated: never timed
    assert choices(meta, "onnx", bf16_here=True) == ["onnx-fp32", "onnx-int8"]
    assert [choices(meta, e, True) for e in ("onnx-fp32", "onnx-int8", "torch", "torch-bf16")] == [
        ["onnx-fp32"], ["onnx-int8"], ["torch"], ["torch-bf16"]]
    with pytest.raises(ValueError, match="no bf16 kernels"):
        choices(meta, "torch-bf16", bf16_here=False)
    meta.int8_accepted, meta.bf16_accepted = False, False  # refused, however fast
    assert choices(meta, "auto", bf16_here=True) == ["onnx-fp32"]
    for engine in ("onnx-int8", "torch-bf16"):
        with pytest.raises(ValueError, match="refused"):
            choices(meta, engine, True)
    meta.bf16_accuracy = None  # made on a CPU without bf16 kernels: not checked
    with pytest.raises(ValueError, match="not checked"):
        choices(meta, "torch-bf16", True)
    with pytest.raises(ValueError, match="engine must be one of"):
        choices(meta, "tensorrt")


def test_the_fastest_engine_is_found_by_timing_each(exported, monkeypatch):
    from prompt_models import engines
    from prompt_models.onnx_student import OnnxClassifier

    clf, folder = exported
    graphs = {"onnx-fp32": OnnxClassifier(folder, False), "onnx-int8": OnnxClassifier(folder, True),
              "torch-bf16": clf.in_bf16()}
    calls = dict.fromkeys(graphs, 0)
    for name, g in graphs.items():
        real = g.predict_texts
        g.predict_texts = lambda *a, real=real, name=name, **k: calls.__setitem__(name, calls[name] + 1) or real(*a, **k)
    engines.fastest(graphs, rows=4, repeats=2, min_seconds=0)
    assert calls == dict.fromkeys(graphs, 3)  # a warm-up and 2 timed runs each
    calls.update(dict.fromkeys(graphs, 0))
    engines.fastest(graphs, rows=4, repeats=2, min_seconds=60)  # milliseconds a run: more runs, at most 50
    assert calls == dict.fromkeys(graphs, 51)
    assert engines.fastest({"onnx-fp32": graphs["onnx-fp32"]}) == "onnx-fp32"  # nothing to time
    # the fastest under 90% of the reference's time; a near tie, or slower: the reference (fp32)
    for seconds, expected in (({"onnx-int8": 0.5, "torch-bf16": 0.4}, "torch-bf16"),
                              ({"onnx-int8": 0.5, "torch-bf16": 2.0}, "onnx-int8"),
                              ({"onnx-int8": 0.95, "torch-bf16": 1.5}, "onnx-fp32")):
        monkeypatch.setattr(engines, "run_seconds", lambda c, texts, s=seconds: s.get(c.engine, 1.0))
        assert engines.fastest(graphs) == expected


def test_the_bf16_twin_is_a_bf16_copy_close_to_fp32(exported):
    clf, _ = exported
    texts = [ex.text_a for ex in toy_examples()]
    twin = clf.in_bf16()
    assert twin.engine == "torch-bf16" and next(twin.model.parameters()).dtype == torch.bfloat16
    assert next(clf.model.parameters()).dtype == torch.float32  # a copy: the fp32 model is left as it was
    got, want = twin.predict_texts(texts), clf.predict_texts(texts)
    assert np.abs(got - want).max() < 0.05 and not np.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("bf16_cpu", [False, True])
def test_the_guard_refuses_an_engine_losing_more_than_half_a_point(exported, monkeypatch, tmp_path, caplog, bf16_cpu):
    """The classifier stage's guard with fake evaluations: the int8 graph loses 1 of 64 test rows (1.6 points),
    the bf16 model none. bf16 is checked only on a CPU with bf16 kernels."""
    from prompt_models import engines, onnx_student
    from prompt_models.distill import SequenceClassifier
    from pet_io.example_files import save_examples
    from tasks.classifier_tasks import onnx_guard
    from tasks.records import ClassifierRef

    clf, folder = exported
    test = toy_examples(32)
    gold = np.array([clf.labels.index(ex.label) for ex in test])

    def fake(self, texts_a, texts_b=None, batch_size=64, progress=False):
        logits = np.eye(2, dtype=np.float32)[gold]  # fp32 and bf16: every row right
        if self.engine == "onnx-int8":
            logits[0] = logits[0, ::-1]  # int8: one row wrong
        return logits

    monkeypatch.setattr(onnx_student.OnnxClassifier, "predict_texts", fake)
    monkeypatch.setattr(SequenceClassifier, "predict_texts", fake)
    monkeypatch.setattr(engines, "cpu_runs_bf16", lambda: bf16_cpu)
    work = tmp_path / "clf"
    (work / "model").mkdir(parents=True)
    shutil.copytree(folder, work / "onnx")
    _meta(work / "onnx", guard_split=None, int8_accuracy=None, fp32_accuracy=None)
    cfg = SimpleNamespace(pet=SimpleNamespace(train=SimpleNamespace(eval_batch_size=16)))
    data = {"test": SimpleNamespace(path=str(save_examples(test, tmp_path / "test.jsonl")))}
    logging.getLogger("pet").addHandler(caplog.handler)  # the tasks' logger outside a run (it may not propagate)
    with caplog.at_level(logging.WARNING):
        metrics = onnx_guard(cfg, data, clf, ClassifierRef("k", str(work / "model"), "", 0))
    logging.getLogger("pet").removeHandler(caplog.handler)
    want = {"onnx_fp32_test_accuracy": 1.0, "onnx_int8_test_accuracy": 63 / 64, "onnx_int8_accepted": 0.0}
    if bf16_cpu:
        want.update(torch_bf16_test_accuracy=1.0, torch_bf16_accepted=1.0)
    assert metrics == want
    assert "int8 ONNX classifier refused" in caplog.text and "bf16" not in caplog.text
    meta = onnx_student.OnnxMeta.read(work / "onnx")
    assert engines.choices(meta, bf16_here=True) == ["onnx-fp32"] + ["torch-bf16"] * bf16_cpu  # int8 not served
    onnx_student.accept(work / "onnx", "test", 0.900, {"int8": 0.896, "bf16": 0.894})
    meta = onnx_student.OnnxMeta.read(work / "onnx")
    assert meta.int8_accepted and not meta.bf16_accepted  # 0.4 points lost: accepted; 0.6: refused
    if not bf16_cpu:  # a rerun on a CPU with bf16 kernels checks what this one could not; int8 is not redone
        monkeypatch.setattr(engines, "cpu_runs_bf16", lambda: True)
        _meta(work / "onnx", bf16_accuracy=None, bf16_accepted=False)
        calls = []
        monkeypatch.setattr(onnx_student.OnnxClassifier, "predict_texts",
                            lambda self, *a, **k: calls.append(self.engine) or fake(self, *a, **k))
        metrics = onnx_guard(cfg, data, clf, ClassifierRef("k", str(work / "model"), "", 0))
        assert calls == ["onnx-fp32"] and metrics["torch_bf16_accepted"] == 1.0
        # a verdict on another split is dropped where bf16 cannot be checked again: not served
        monkeypatch.setattr(engines, "cpu_runs_bf16", lambda: False)
        _meta(work / "onnx", guard_split="dev")
        metrics = onnx_guard(cfg, data, clf, ClassifierRef("k", str(work / "model"), "", 0))
        meta = onnx_student.OnnxMeta.read(work / "onnx")
        assert (meta.guard_split, meta.bf16_accuracy, meta.bf16_accepted) == ("test", None, False)
        assert "torch_bf16_accepted" not in metrics and metrics["onnx_int8_accepted"] == 0.0


def test_an_int8_graph_made_by_an_earlier_method_is_exported_again(exported, monkeypatch, tmp_path):
    """A work_dir from before the weight-only int8 graph: its ONNX folder and verdict are not reused."""
    from prompt_models import onnx_student
    from pet_io.example_files import save_examples
    from tasks.classifier_tasks import onnx_guard
    from tasks.records import ClassifierRef

    clf, folder = exported
    work = tmp_path / "clf"
    (work / "model").mkdir(parents=True)
    shutil.copytree(folder, work / "onnx")
    _meta(work / "onnx", quantization=None, guard_split="test", fp32_accuracy=0.5, int8_accuracy=0.5, int8_accepted=True)
    exports = []
    monkeypatch.setattr(onnx_student, "export", lambda c, out: exports.append(out) or shutil.copytree(
        folder, out, dirs_exist_ok=True))
    test = toy_examples(4)
    gold = np.array([clf.labels.index(ex.label) for ex in test])
    monkeypatch.setattr(onnx_student.OnnxClassifier, "predict_texts",
                        lambda self, a, b=None, batch_size=64, progress=False: np.eye(2, dtype=np.float32)[gold])
    cfg = SimpleNamespace(pet=SimpleNamespace(train=SimpleNamespace(eval_batch_size=16)))
    data = {"test": SimpleNamespace(path=str(save_examples(test, tmp_path / "test.jsonl")))}
    metrics = onnx_guard(cfg, data, clf, ClassifierRef("k", str(work / "model"), "", 0))
    assert exports == [work / "onnx"]
    assert onnx_student.OnnxMeta.read(work / "onnx").quantization == onnx_student.QUANTIZATION
    assert metrics["onnx_fp32_test_accuracy"] == metrics["onnx_int8_test_accuracy"] == 1.0  # measured again
    exports.clear()
    onnx_guard(cfg, data, clf, ClassifierRef("k", str(work / "model"), "", 0))
    assert exports == []  # a current export is kept


# ------------------------------------------------------------------------------------ labeling, GPU script
def test_random_weight_backbone_has_the_real_parameter_count():
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_labeling

    with torch.device("meta"):  # no memory: only the shapes
        model = gpu_labeling.random_lm(0)
    # SmolLM2-135M-Instruct's checkpoint holds 134,515,008 parameters (its model.safetensors, 272 tensors;
    # the LM head is tied to the input embedding)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 30


def test_gpu_benchmark_dry_run(tmp_path):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_labeling

    result = gpu_labeling.main(["--dry-run", "--datasets", "sst2", "--out", str(tmp_path / "r.json")])
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(result))
    assert [r["batch_size"] for r in result["rows"]] == [4, 8] and result["dry_run"]
    for row in result["rows"]:
        assert row["n_models"] == 3 and row["product_texts_per_s"] > 0 and row["plain_texts_per_s"] > 0
        assert row["argmax_agree"] == 1.0 and row["max_abs_prob_diff"] < 1e-4  # same models, same numbers


def test_gpu_benchmark_with_bf16_weights_and_the_overhead_script(tmp_path):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_labeling
    import gpu_overhead

    # models cast to bf16: the LM head takes the hidden states in its own dtype (it raised a dtype error)
    result = gpu_labeling.main(["--dry-run", "--weights", "bf16", "--datasets", "sst2",
                                "--out", str(tmp_path / "r.json")])
    assert "bf16 weights" in result["dtype"] and result["rows"][0]["argmax_agree"] == 1.0
    overhead = gpu_overhead.main(["--dry-run", "--out", str(tmp_path / "o.json")])
    assert [r["variant"] for r in overhead["rows"]] == ["fp32+autocast", "bf16", "bf16+graph"]
    assert all(r["ms_per_forward"] > 0 for r in overhead["rows"][:2]) and overhead["launch_us"] > 0

