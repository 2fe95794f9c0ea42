"""The whole pet flow, a cached rerun, and relabel on new data, on real SST-2 with splade-tiny.

Runs under prefect_test_harness with MLflow on a temporary sqlite store.
"""
import json

import mlflow
import pandas as pd
import pytest
import yaml

from conftest import SHARED

MODEL = SHARED / "models" / "splade-tiny"
SST2 = SHARED / "data" / "lmbff_kshot" / "SST-2" / "16-42"
POOL = SHARED / "data" / "lmbff_train_pools" / "SST-2" / "train.tsv"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not (MODEL.exists() and SST2.exists()), reason="needs ../shared model and data"),
]


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("sst2")
    cfg = {
        "name": "sst2-it",
        "labels": ["0", "1"],
        "model": {"path": str(MODEL), "max_length": 64},
        "data": {
            "train": {"path": str(SST2 / "train.tsv"), "text_a": "sentence"},
            "dev": {"path": str(SST2 / "dev.tsv"), "text_a": "sentence"},
            "test": {"path": str(SST2 / "test.tsv"), "text_a": "sentence"},
            "unlabeled": {"path": str(POOL), "text_a": "sentence", "limit": 400, "seed": 0},
        },
        "patterns": ["{text_a} It was {mask} .", "Just {mask} ! {text_a}"],
        "verbalizer": {"label_words": {"0": ["terrible", "bad"], "1": ["great", "good"]}},
        "seeds": [1],
        "pet": {"train": {"learning_rate": 5e-4, "max_steps": 80, "batch_size": 8, "progress": False}, "shard_size": 150},
        "distill": {"train": {"learning_rate": 2e-4, "max_steps": 200, "batch_size": 16, "progress": False},
                    "with_train": True, "pair_tuning": True},
        "tracking": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "it", "registered_model": "sst2-it"},
        "work_dir": str(root / "work"),
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def first_run(prefect_harness, config_path):
    from flows.pet_flow import pet_flow

    state = pet_flow(str(config_path), return_state=True)
    return state.result(), str(state.state_details.flow_run_id)


def _client(config_path):
    from pet_config.loading import load_config

    uri = load_config(config_path).tracking_uri()
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)


def test_pet_flow_beats_chance_on_real_data(first_run):
    summary, _ = first_run
    # SST-2 test has 872 sentences, 428/444: chance (majority) is 0.509
    assert summary["ensemble_metrics"]["test_accuracy"] > 0.56, summary["ensemble_metrics"]
    assert summary["classifier_metrics"]["test_accuracy"] > 0.56, summary["classifier_metrics"]
    assert summary["n_soft_labeled"] == 400
    assert summary["classifier"]["n_train"] == 400 + 32  # distill.with_train: the 32 labeled examples join (off by default for 2 labels)
    assert [m["cached"] for m in summary["pattern_models"]] == [False, False]


def test_mlflow_lineage(first_run, config_path):
    summary, flow_run_id = first_run
    client = _client(config_path)
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.tags["prefect.flow_run_id"] == flow_run_id
    assert parent.data.tags["prefect.flow_name"] == "pet"
    assert {d.dataset.name for d in parent.inputs.dataset_inputs} == {"train", "dev", "test", "unlabeled"}
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=100
    )
    stages = sorted(r.data.tags["stage"] for r in children)
    assert stages == sorted(
        ["pattern-0-seed-1", "pattern-1-seed-1", "evaluate-ensemble", "soft-label", "distill", "evaluate-classifier", "register"]
    )
    by_stage = {r.data.tags["stage"]: r for r in children}
    pattern_run = by_stage["pattern-0-seed-1"]
    assert {"pre_train_accuracy", "dev_accuracy", "test_accuracy", "train_loss"} <= set(pattern_run.data.metrics)
    assert [d.dataset.name for d in pattern_run.inputs.dataset_inputs] == ["train"]
    # distill.with_train is on here: the gold-labeled train split is an input of the student too
    assert sorted(d.dataset.name for d in by_stage["distill"].inputs.dataset_inputs) == ["soft_labeled", "train"]
    # distill.pair_tuning too: SetFit's pairs of the 32 examples (16 per label: 272 same-label, 256 others, oversampled)
    assert by_stage["distill"].data.metrics["n_pairs"] == 544 and "pair_loss" in by_stage["distill"].data.metrics
    assert parent.data.metrics["classifier_test_accuracy"] == summary["classifier_metrics"]["test_accuracy"]


def test_champion_alias_points_at_a_loadable_classifier(first_run, config_path):
    summary, flow_run_id = first_run
    client = _client(config_path)
    mv = client.get_model_version_by_alias("sst2-it", "champion")
    assert str(mv.version) == summary["registered"]["version"]
    assert mv.tags["prefect_flow_run_id"] == flow_run_id
    served = mlflow.pyfunc.load_model("models:/sst2-it@champion")  # what `mlflow models serve` runs
    out = served.predict(pd.DataFrame({"text": ["a great , moving film", "dull and lifeless"]}))
    assert set(out["label"]) <= {"0", "1"} and list(out.columns) == ["label", "prob_0", "prob_1"]
    # the flow exported the student to ONNX: the registered model serves an engine the guard allowed, timed
    # (an ONNX graph, or the torch model in bf16 on a CPU with bf16 kernels), never torch fp32 on a CPU
    assert served.unwrap_python_model().clf.engine in ("onnx-fp32", "onnx-int8", "torch-bf16")


def test_lineage_traces_the_champion_to_its_flow_run_and_data(first_run, config_path, capsys):
    from flows.cli import main

    summary, flow_run_id = first_run
    assert main(["lineage", str(config_path)]) == 0
    text = capsys.readouterr().out.splitlines()  # for a person: a line per flow run, dataset and stage
    assert text[0] == f"lineage: sst2-it v{summary['registered']['version']} ('champion')"
    assert text[1].startswith(f"made by: pet flow run {flow_run_id} (MLflow run ")
    assert sum(line.startswith("  dataset ") for line in text) == 4 and any("  stage distill: run " in x for x in text)
    assert main(["lineage", str(config_path), "--json"]) == 0
    lin = json.loads(capsys.readouterr().out)
    assert lin["version"] == summary["registered"]["version"] and lin["alias"] == "champion"
    assert lin["flow"]["prefect_flow_run_id"] == flow_run_id
    assert lin["flow"]["mlflow_run_id"] == summary["mlflow_run_id"]
    assert {d["name"] for d in lin["datasets"]} == {"train", "dev", "test", "unlabeled"}
    assert [s["stage"] for s in lin["stages"]][:2] == ["pattern-0-seed-1", "pattern-1-seed-1"]
    assert lin["version_tags"]["classifier_key"] == summary["classifier"]["key"]


def test_rerun_skips_finished_work(first_run, config_path):
    from flows.pet_flow import pet_flow

    summary, _ = first_run
    again = pet_flow(str(config_path))
    assert [m["cached"] for m in again["pattern_models"]] == [True, True]
    assert again["classifier"]["cached"] is True
    assert again["registered"]["version"] == summary["registered"]["version"]  # same classifier, no new version
    assert again["ensemble_key"] == summary["ensemble_key"]


def test_relabel_labels_only_new_texts(first_run, config_path, tmp_path):
    from flows.pet_flow import relabel_flow
    from pet_config.loading import load_config
    from pet_io.example_files import read_examples

    summary, _ = first_run
    cfg = load_config(config_path)
    old = read_examples(next((cfg.work_path / "data").glob("unlabeled-*.parquet")))[:50]
    pool = [line.split("\t")[0] for line in POOL.read_text().splitlines()[1:]]
    seen = {e.text_a for e in read_examples(next((cfg.work_path / "data").glob("unlabeled-*.parquet")))}
    fresh = [t for t in pool if t not in seen][:120]
    new_file = tmp_path / "new.jsonl"
    new_file.write_text("\n".join(json.dumps({"sentence": t}) for t in [e.text_a for e in old] + fresh))

    result = relabel_flow(str(config_path), str(new_file))
    assert result["n_new"] == 120
    assert result["n_soft_labeled"] == 520  # the classifier is re-distilled on old and new soft labels
    assert result["ensemble_key"] == summary["ensemble_key"]
    assert int(result["registered"]["version"]) == int(summary["registered"]["version"]) + 1
    client = _client(config_path)
    champion = str(client.get_model_version_by_alias("sst2-it", "champion").version)
    # promoted only if at least as good on dev as the first classifier; else it is the challenger
    expected = result["registered"]["version"] if result["registered"]["promoted"] else summary["registered"]["version"]
    assert champion == expected
    assert result["classifier_metrics"]["test_accuracy"] > 0.56

    nothing = relabel_flow(str(config_path), str(new_file))
    assert nothing["n_new"] == 0 and nothing["registered"] is None


def test_dev_texts_in_a_relabel_file_are_reported_then_and_by_later_runs(first_run, config_path, tmp_path):
    # the student is distilled on every soft label of its ensemble: texts a relabel brought in count in later runs
    from flows.pet_flow import pet_flow, relabel_flow
    from pet_config.loading import load_config
    from pet_io.example_files import read_examples
    from pet_io.overlap import text_key

    cfg = load_config(config_path)
    dev = {text_key(t) for t in pd.read_csv(SST2 / "dev.tsv", sep="\t", quoting=3)["sentence"]}
    # the run's own pool (400 texts), not the copies of the relabel files beside it
    unl = max((read_examples(p) for p in (cfg.work_path / "data").glob("unlabeled-*.parquet")), key=len)
    picked = [t for t in pd.read_csv(SST2 / "dev.tsv", sep="\t", quoting=3)["sentence"]
              if text_key(t) not in {text_key(e.text_a) for e in unl}][:3]
    new_file = tmp_path / "with_dev.csv"
    pd.DataFrame({"sentence": [t.upper() for t in picked] + ["a text no split has , surely"]}).to_csv(new_file, index=False)
    result = relabel_flow(str(config_path), str(new_file))
    assert f"3 of {len(dev)} distinct dev texts are also in unlabeled" in result["split_overlaps"]

    again = pet_flow(str(config_path))  # its unlabeled file holds none of them; earlier relabels' texts do
    store = [t for f in (cfg.work_path / "soft_labels" / again["ensemble_key"]).glob("*/labels.parquet")
             for t in pd.read_parquet(f)["text_a"]]
    earlier = {text_key(t) for t in store} - {text_key(e.text_a) for e in unl}
    assert f"{len(dev & earlier)} of {len(dev)} distinct dev texts are also in texts soft-labeled by earlier runs" \
        in again["split_overlaps"]
    assert len(dev & earlier) >= 3
