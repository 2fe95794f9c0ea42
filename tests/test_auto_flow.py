"""A config without patterns or label words runs through the pet flow: prompts chosen, recorded, and
the calibrated zero-shot reference reported (tiny BERT)."""
import mlflow
import pandas as pd
import pytest
import yaml

from conftest import toy_examples


@pytest.fixture(scope="module")
def auto_run(prefect_harness, tmp_path_factory, tiny_model_dir):
    from flows.pet_flow import pet_flow
    from pet_config.loading import load_config

    root = tmp_path_factory.mktemp("auto")
    # codes as labels: the words are searched
    rows = [{"text": e.text_a, "label": {"pos": "1", "neg": "0"}[e.label]} for e in toy_examples(8)]
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    pd.DataFrame(rows[:8]).to_csv(root / "dev.csv", index=False)
    pd.DataFrame({"text": [r["text"] for r in rows]}).to_csv(root / "unlabeled.csv", index=False)
    cfg = {
        "name": "toy-auto", "labels": ["0", "1"],
        "model": {"path": str(tiny_model_dir), "max_length": 32},
        "data": {"train": {"path": "train.csv", "text_a": "text"}, "dev": {"path": "dev.csv", "text_a": "text"},
                 "unlabeled": {"path": "unlabeled.csv", "text_a": "text"}},
        "patterns": [], "verbalizer": {"label_words": {}},
        "auto_prompts": {"num_patterns": 2, "prior_texts": 8},
        "pet": {"train": {"batch_size": 8, "progress": False}, "shard_size": 16},
        "distill": {"train": {"max_steps": 5, "batch_size": 8, "progress": False}},
        "tracking": {"experiment": "auto", "registered_model": "toy-auto"},
        "work_dir": "work",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_config(path), pet_flow(str(path))


def test_chosen_prompts_are_trained_recorded_and_compared_with_zero_shot(auto_run):
    from flows.cli import summary_line
    from prompt_models.auto_prompts import SINGLE_TEMPLATES

    cfg, summary = auto_run
    assert len(summary["templates"]) == 2 and set(summary["templates"]) <= set(SINGLE_TEMPLATES)
    assert set(summary["label_words"]) == {"0", "1"}
    zs = summary["zero_shot_calibrated"]
    assert 0.0 <= zs["metrics"]["dev_accuracy"] <= 1.0 and zs["split"] == "dev"
    assert "calibrated zero-shot dev" in summary_line("run", cfg, summary)
    # this toy dev set is taken from train, and the unlabeled texts are train's: both are reported
    n_dev = len({e.text_a for e in toy_examples(8)[:8]})
    assert summary["split_overlaps"] == [f"{n_dev} of {n_dev} distinct dev texts are also in train",
                                         f"{n_dev} of {n_dev} distinct dev texts are also in unlabeled"]
    assert f"WARNING {n_dev} of {n_dev} distinct dev texts are also in train" in summary_line("run", cfg, summary)

    client = mlflow.MlflowClient(cfg.tracking_uri())
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.tags["ensemble_beats_zero_shot"] in ("true", "false")
    assert parent.data.metrics["overlap_dev_in_unlabeled"] == n_dev
    assert parent.data.params["rule_max_steps"] == "32"  # |T| = 16, 2 labels: the floor of the rule
    resolved = yaml.safe_load(open(client.download_artifacts(parent.info.run_id, "resolved_config.yaml")).read())
    assert resolved["patterns"] == summary["templates"]
    assert resolved["verbalizer"]["label_words"] == summary["label_words"]
    assert resolved["pet"]["train"]["max_steps"] == 32
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    auto = next(r for r in children if r.data.tags["stage"] == "auto-prompts")
    assert auto.data.params["selection_split"] == "dev"
    assert "auto_prompts.json" in {a.path for a in client.list_artifacts(auto.info.run_id)}


def test_one_example_per_label_without_dev_runs_end_to_end(prefect_harness, tmp_path, tiny_model_dir):
    # the smallest task a user can bring: nothing to hold out, so prompts are ranked on train itself
    from flows.pet_flow import pet_flow
    from pet_config.loading import load_config

    rows = [{"text": e.text_a, "label": e.label} for e in toy_examples(1)]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": [e.text_a for e in toy_examples(8)]}).to_csv(tmp_path / "unlabeled.csv", index=False)
    cfg = {
        "name": "one-each", "labels": ["neg", "pos"],
        "model": {"path": str(tiny_model_dir), "max_length": 32},
        "data": {"train": {"path": "train.csv", "text_a": "text"}, "unlabeled": {"path": "unlabeled.csv", "text_a": "text"}},
        "patterns": [], "verbalizer": {"label_words": {}},
        "auto_prompts": {"num_patterns": 1, "prior_texts": 8},
        "pet": {"train": {"batch_size": 2, "progress": False}, "shard_size": 16},
        "distill": {"train": {"max_steps": 3, "batch_size": 4, "progress": False}},
        "tracking": {"experiment": "one-each", "registered_model": "one-each"},
        "work_dir": "work",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    summary = pet_flow(str(path))
    assert len(summary["templates"]) == 1 and set(summary["label_words"]) == {"neg", "pos"}
    client = mlflow.MlflowClient(load_config(path).tracking_uri())
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    auto = next(r for r in children if r.data.tags["stage"] == "auto-prompts")
    assert auto.data.params["selection_split"].startswith("train")
    assert str(client.get_model_version_by_alias("one-each", "champion").version) == "1"
    # no labeled split to measure the int8 student on: checked against the fp32 graph's own labels
    import json

    (meta,) = [json.loads(p.read_text()) for p in (tmp_path / "work").glob("classifiers/*/onnx/onnx.json")]
    assert meta["guard_split"] == "unlabeled" and meta["fp32_accuracy"] == 1.0  # fp32's own labels are the reference
    assert summary["classifier_metrics"]["onnx_int8_fp32_agreement"] == meta["int8_accuracy"]


def test_a_template_zero_shot_passed_over_is_trained_and_kept_only_if_it_wins_on_dev(prefect_harness, tmp_path,
                                                                                      tiny_model_dir, monkeypatch):
    import json

    from flows.pet_flow import pet_flow
    from pet_config.loading import load_config
    from prompt_models import auto_prompts
    from tasks import auto_prompt_tasks

    # whatever the tiny model ranks, one more library template is a candidate to train (as the best
    # question template is for questions)
    def select(*args, **kwargs):
        res = auto_prompts.select_prompts(*args, **kwargs)
        res.trained_candidates = res.templates + [next(s["template"] for s in reversed(res.template_scores))]
        return res

    monkeypatch.setattr(auto_prompt_tasks, "select_prompts", select)
    rows = [{"text": e.text_a, "label": e.label} for e in toy_examples(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(rows).to_csv(tmp_path / "dev.csv", index=False)
    pd.DataFrame({"text": [r["text"] for r in rows]}).to_csv(tmp_path / "unlabeled.csv", index=False)
    cfg = {
        "name": "rerank", "labels": ["neg", "pos"], "seeds": [1, 2],
        "model": {"path": str(tiny_model_dir), "max_length": 32},
        "data": {"train": {"path": "train.csv", "text_a": "text"}, "dev": {"path": "dev.csv", "text_a": "text"},
                 "unlabeled": {"path": "unlabeled.csv", "text_a": "text"}},
        "patterns": [], "verbalizer": {"label_words": {}},
        "auto_prompts": {"num_patterns": 1, "prior_texts": 8},
        "pet": {"train": {"batch_size": 4, "max_steps": 4, "progress": False}, "shard_size": 16},
        "distill": {"train": {"max_steps": 3, "batch_size": 4, "progress": False}},
        "tracking": {"experiment": "rerank", "registered_model": "rerank"},
        "work_dir": "work",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    summary = pet_flow(str(path))
    client = mlflow.MlflowClient(load_config(path).tracking_uri())
    run_id = summary["mlflow_run_id"]
    ranking = json.load(open(client.download_artifacts(run_id, "trained_rerank.json")))["candidates"]
    assert [r["zero_shot_order"] for r in ranking] == [1, 2] and sum(r["kept"] for r in ranking) == 1
    kept = next(r for r in ranking if r["kept"])
    assert kept["trained_dev_accuracy"] == max(r["trained_dev_accuracy"] for r in ranking)
    assert summary["templates"] == [kept["template"]]
    assert client.get_run(run_id).data.params["reranked_templates"] == kept["template"]
    resolved = yaml.safe_load(open(client.download_artifacts(run_id, "resolved_config.yaml")).read())
    assert resolved["patterns"] == [kept["template"]]
    # the ensemble is the kept template's models, one per seed, trained once (not again as a cache hit)
    models = summary["pattern_models"]
    assert [(m["template"], m["seed"], m["cached"]) for m in models] == [(kept["template"], s, False) for s in (1, 2)]
    assert len(list((tmp_path / "work" / "pattern_models").iterdir())) == 4  # 2 candidates x 2 seeds
    # the manifest and each candidate's stage run agree on who is in the ensemble, and where
    from flows.auto_stage import trained_rerank_stage
    from flows.common import read_manifest
    from tasks.data_tasks import load_and_validate

    config = load_config(path)
    assert [(m.template, m.pattern_index) for m in read_manifest(config).models] == [(kept["template"], 0)] * 2
    parent = client.get_run(run_id)
    runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    tags = sorted((r.data.tags["trained_rerank"], r.data.tags.get("ensemble_pattern_index"), r.data.params["template"])
                  for r in runs if "trained_rerank" in r.data.tags)
    dropped = next(r["template"] for r in ranking if not r["kept"])
    assert tags == [("dropped", None, dropped)] * 2 + [("kept", "0", kept["template"])] * 2
    # switched off, or without dev, nothing is trained: the zero-shot choice stands
    data = load_and_validate.fn(config)
    off = config.model_copy(update={"auto_prompts": config.auto_prompts.model_copy(update={"trained_rerank": False})})
    two = [r["template"] for r in ranking]
    assert trained_rerank_stage(off, data, two, run_id)[1] is None
    assert trained_rerank_stage(config, {k: v for k, v in data.items() if k != "dev"}, two, run_id)[1] is None
