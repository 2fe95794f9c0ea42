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

    for module in (pet, distill, onnx_student):
        assert "run_batches(" in inspect.getsource(module)
    # pet predict labels through the classifiers' predict_texts, no loop of its own
    assert "argsort" not in inspect.getsource(predict) and "predict_texts(" in inspect.getsource(predict)


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


def test_engine_choice(exported, tmp_path, monkeypatch):
    from prompt_models import onnx_student
    from prompt_models.onnx_student import available_engine

    _, folder = exported
    assert available_engine(None) == "torch" and available_engine(tmp_path) == "torch"  # no export
    with pytest.raises(ValueError, match="no ONNX export"):
        available_engine(tmp_path, "onnx")
    _meta(folder, int8_accepted=True)
    for faster in (True, False):  # an accepted int8 graph is the default only where it runs faster
        monkeypatch.setattr(onnx_student, "int8_runs_faster", lambda folder, faster=faster: faster)
        default = "onnx-int8" if faster else "onnx-fp32"
        assert [available_engine(folder, e) for e in ("auto", "onnx", "onnx-fp32", "onnx-int8", "torch")] == [
            default, default, "onnx-fp32", "onnx-int8", "torch"]
    monkeypatch.setattr(onnx_student, "int8_runs_faster", lambda folder: True)  # a refused graph, however fast
    _meta(folder, int8_accepted=False)
    assert available_engine(folder) == "onnx-fp32" and available_engine(folder, "onnx") == "onnx-fp32"
    with pytest.raises(ValueError, match="refused"):
        available_engine(folder, "onnx-int8")
    with pytest.raises(ValueError, match="engine must be one of"):
        available_engine(folder, "tensorrt")


def test_the_faster_graph_is_found_by_timing_both(exported, monkeypatch, tmp_path):
    from prompt_models import onnx_student

    _, folder = exported
    calls = {"onnx-fp32": 0, "onnx-int8": 0}
    real = onnx_student.OnnxClassifier.predict_texts

    def counted(self, *args, **kwargs):
        calls[self.engine] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(onnx_student.OnnxClassifier, "predict_texts", counted)
    onnx_student.int8_runs_faster(folder, rows=4, repeats=2)
    assert calls == {"onnx-fp32": 3, "onnx-int8": 3}  # a warm-up and 2 timed runs each
    monkeypatch.undo()
    # int8 in half the time: int8; in 95% of it (under the 10% margin) or twice it: fp32
    for int8_seconds, expected in ((0.5, True), (0.95, False), (2.0, False)):
        monkeypatch.setattr(onnx_student, "run_seconds",
                            lambda clf, texts, s=int8_seconds: s if clf.engine == "onnx-int8" else 1.0)
        assert onnx_student.int8_runs_faster(folder) is expected
    broken = tmp_path / "no-int8"
    shutil.copytree(folder, broken)
    (broken / onnx_student.INT8_FILE).unlink()
    assert onnx_student.int8_runs_faster(broken) is False  # a graph that does not load: fp32, no traceback


def test_int8_guard_refuses_a_graph_losing_more_than_half_a_point(exported, monkeypatch, tmp_path, caplog):
    """The classifier stage's guard with a fake int8 evaluation that loses 1 of 64 test rows (1.6 points)."""
    from prompt_models import onnx_student
    from pet_io.example_files import save_examples
    from tasks.classifier_tasks import onnx_guard
    from tasks.records import ClassifierRef

    clf, folder = exported
    test = toy_examples(32)
    gold = np.array([clf.labels.index(ex.label) for ex in test])

    def fake(self, texts_a, texts_b=None, batch_size=64, progress=False):
        logits = np.eye(2, dtype=np.float32)[gold]  # fp32: every row right
        if self.engine == "onnx-int8":
            logits[0] = logits[0, ::-1]  # int8: one row wrong
        return logits

    monkeypatch.setattr(onnx_student.OnnxClassifier, "predict_texts", fake)
    work = tmp_path / "clf"
    (work / "model").mkdir(parents=True)
    shutil.copytree(folder, work / "onnx")
    _meta(work / "onnx", guard_split=None, int8_accuracy=None, fp32_accuracy=None)
    cfg = SimpleNamespace(pet=SimpleNamespace(train=SimpleNamespace(eval_batch_size=16)))
    data = {"test": SimpleNamespace(path=str(save_examples(test, tmp_path / "test.jsonl")))}
    logging.getLogger("pet").addHandler(caplog.handler)  # the tasks' logger outside a run (it may not propagate)
    with caplog.at_level(logging.WARNING):
        metrics = onnx_guard(cfg, data, clf, ClassifierRef("k", str(work / "model"), "", 0))
    assert metrics == {"onnx_fp32_test_accuracy": 1.0, "onnx_int8_test_accuracy": 63 / 64, "onnx_int8_accepted": 0.0}
    logging.getLogger("pet").removeHandler(caplog.handler)
    assert "int8 ONNX classifier refused" in caplog.text
    assert onnx_student.available_engine(work / "onnx") == "onnx-fp32"  # served in fp32 instead
    assert onnx_student.accept_int8(work / "onnx", 0.900, 0.896, "test")  # 0.4 points: accepted
    assert not onnx_student.accept_int8(work / "onnx", 0.900, 0.894, "test")  # 0.6 points: refused


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

