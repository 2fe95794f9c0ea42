"""The production loop on tiny models: promotion, no champion regression, one run per pipeline, and
caches that follow the dev/test files."""
import threading

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import toy_examples

SUBJECTS = ["the movie", "the plot", "a film", "the story", "the actors", "this film"]
VERDICTS = ["was great", "was awful", "is good", "is bad", "was fun", "was boring", "is wonderful", "is terrible"]


def production_config(root, tiny_model_dir, name, **tracking):
    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(8)]).to_csv(root / "train.csv", index=False)
    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(4)]).to_csv(root / "dev.csv", index=False)
    texts = [f"{s} {v}" for s in SUBJECTS for v in VERDICTS]
    pd.DataFrame({"text": texts[:24]}).to_csv(root / "unlabeled.csv", index=False)
    pd.DataFrame({"text": texts[24:]}).to_csv(root / "new.csv", index=False)
    fast = {"learning_rate": 0.003, "max_steps": 8, "batch_size": 8, "progress": False}
    cfg = {
        "name": name,
        "model": {"path": str(tiny_model_dir), "max_length": 32},
        "data": {
            "train": {"path": "train.csv", "text_a": "text"},
            "dev": {"path": "dev.csv", "text_a": "text"},
            "unlabeled": {"path": "unlabeled.csv", "text_a": "text"},
        },
        "patterns": ["{text_a} it was {mask} .", "{text_a} all in all it was {mask} ."],
        "verbalizer": {"label_words": {"pos": ["great"], "neg": ["awful"]}},
        "seeds": [1],
        "pet": {"train": fast, "shard_size": 10},
        "distill": {"train": fast},
        # a tiny model on 8 dev texts scores near always answering one label: the loop's mechanics are under
        # test here, the majority floor in test_bad_input
        "tracking": {"experiment": name, "registered_model": name, "beat_majority": False, **tracking},
        "work_dir": "work",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _alias_version(cfg_path, alias):
    from pet_config.loading import load_config

    client = mlflow.MlflowClient(load_config(cfg_path).tracking_uri())
    try:
        return str(client.get_model_version_by_alias(load_config(cfg_path).tracking.registered_model, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


@pytest.mark.slow  # three flows: pet, relabel, pet
def test_scheduled_run_after_relabel_keeps_the_relabeled_champion(prefect_harness, tmp_path, tiny_model_dir, monkeypatch):
    from flows.pet_flow import pet_flow, relabel_flow
    from tasks import label_tasks

    loads = []
    real_load = label_tasks.load_pattern_model
    monkeypatch.setattr(label_tasks, "load_pattern_model", lambda cfg, m, *a: loads.append(m.key) or real_load(cfg, m, *a))
    # margin -1: every new classifier is promoted, so only the soft-label set decides what is champion
    path = production_config(tmp_path, tiny_model_dir, "loop", promote_margin=-1.0)
    first = pet_flow(str(path))
    assert first["n_soft_labeled"] == 24 and first["registered"]["version"] == "1"
    loads.clear()
    relabeled = relabel_flow(str(path), str(tmp_path / "new.csv"))
    assert relabeled["n_soft_labeled"] == 48 and relabeled["registered"]["version"] == "2"
    # 24 new texts in 3 shards of 10: each of the 2 pattern models is loaded once for all 3
    assert sorted(loads) == sorted(m["key"] for m in first["pattern_models"])
    logits = list((tmp_path / "work" / "shard_logits").glob("*/*.npy"))
    assert len(logits) == 2 * 6  # one file per (model, shard), the first run's 3 shards and the new 3
    assert _alias_version(path, "champion") == "2"
    # the relabel champion's lineage reaches back to the pet run that trained its pattern models
    from flows.lineage import champion_lineage
    from pet_config.loading import load_config

    lin = champion_lineage(load_config(path))
    assert lin["flow"]["prefect_flow_name"] == "relabel"
    assert lin["ensemble"]["flow"]["mlflow_run_id"] == first["mlflow_run_id"]
    assert {"pattern-0-seed-1", "pattern-1-seed-1"} <= {s["stage"] for s in lin["ensemble"]["stages"]}
    assert "train" in {d["name"] for d in lin["ensemble"]["datasets"]}
    assert lin["earlier_relabels"] == []  # the first relabel of this ensemble
    assert not any(s["cached"] for s in lin["ensemble"]["stages"])  # trained by that run: tagged "false"
    # the nightly run distills on every soft label of its ensemble, the relabeled ones included:
    # it rebuilds the relabel's classifier and the champion does not go back to v1
    loads.clear()
    nightly = pet_flow(str(path))
    assert loads == []  # every (model, shard) pair is labeled already
    assert nightly["n_soft_labeled"] == 48
    assert nightly["registered"]["version"] == "2" and nightly["registered"]["reused"]
    assert _alias_version(path, "champion") == "2"
    # a second relabel's classifier learns the first relabel's texts too: its lineage names that run and file
    from flows.lineage import lineage_lines

    pd.DataFrame({"text": [f"{s} {v} indeed" for s in SUBJECTS for v in VERDICTS][:12]}).to_csv(
        tmp_path / "newer.csv", index=False)
    second = relabel_flow(str(path), str(tmp_path / "newer.csv"))
    assert second["n_soft_labeled"] == 60 and _alias_version(path, "champion") == "3"
    lin = champion_lineage(load_config(path))
    assert [(r["flow"]["mlflow_run_id"], r["n_new"]) for r in lin["earlier_relabels"]] == [(relabeled["mlflow_run_id"], 24)]
    text = lineage_lines(lin)
    assert "also distilled on the 24 new texts of relabel flow run" in text and "cached from None" not in text
    assert "new.csv" in text.split("also distilled on")[1] and "newer.csv" not in text.split("also distilled on")[1]


def test_a_worse_classifier_becomes_challenger_not_champion(prefect_harness, tmp_path, tiny_model_dir):
    from flows.pet_flow import pet_flow, relabel_flow
    from pet_config.loading import load_config

    # margin +1: no classifier can beat the champion's dev accuracy by a whole point
    path = production_config(tmp_path, tiny_model_dir, "gate", promote_margin=1.0)
    assert pet_flow(str(path))["registered"]["promoted"]  # the first one has nothing to beat
    relabeled = relabel_flow(str(path), str(tmp_path / "new.csv"))
    reg = relabeled["registered"]
    assert reg["version"] == "2" and not reg["promoted"] and reg["alias"] == "challenger"
    assert _alias_version(path, "champion") == "1" and _alias_version(path, "challenger") == "2"
    cfg = load_config(path)
    client = mlflow.MlflowClient(cfg.tracking_uri())
    register_run = client.search_runs(
        [client.get_experiment_by_name("gate").experiment_id], "tags.stage = 'register'", order_by=["start_time DESC"]
    )[0]
    decision = mlflow.artifacts.load_dict(f"runs:/{register_run.info.run_id}/promotion.json")
    assert decision["champion_version"] == "1" and decision["metric"] == "dev_accuracy"
    assert decision["new_score"] < decision["champion_score"] + 1.0


def test_two_runs_of_one_pipeline_do_not_both_train(prefect_harness, tmp_path, tiny_model_dir):
    from flows.pet_flow import pet_flow
    from pet_config.loading import load_config

    path = production_config(tmp_path, tiny_model_dir, "twice")
    results, errors = [], []

    def run():
        try:
            results.append(pet_flow(str(path)))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors and len(results) == 2
    trained = [m["cached"] for r in results for m in r["pattern_models"]]
    assert trained.count(False) == 2 and trained.count(True) == 2  # each pattern model trained once
    assert {r["registered"]["version"] for r in results} == {"1"}  # one registration, reused by the other
    client = mlflow.MlflowClient(load_config(path).tracking_uri())
    assert len(client.search_model_versions("name='twice'")) == 1


def test_a_changed_dev_file_is_scored_afresh_by_cached_models(prefect_harness, tmp_path, tiny_model_dir):
    from flows.pet_flow import pet_flow
    from pet_config.loading import load_config

    path = production_config(tmp_path, tiny_model_dir, "devswap")
    first = pet_flow(str(path))
    # a different dev set, of another size: the models are reused, their dev scores are not
    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(7)][:11]).to_csv(tmp_path / "dev.csv", index=False)
    second = pet_flow(str(path))
    assert [m["cached"] for m in second["pattern_models"]] == [True, True]
    cfg = load_config(path)
    folder = cfg.work_path / "pattern_models" / second["pattern_models"][0]["key"]
    dev_logits = sorted(folder.glob("dev-*_logits.npy"))
    assert len(dev_logits) == 2 and sorted(len(np.load(f)) for f in dev_logits) == [8, 11]
    new_logits = next(np.load(f) for f in dev_logits if len(np.load(f)) == 11)
    gold = np.array([["pos", "neg"].index(e.label) for e in toy_examples(7)][:11])
    assert second["pattern_models"][0]["metrics"]["dev_accuracy"] == pytest.approx((new_logits.argmax(-1) == gold).mean())
    assert first["pattern_models"][0]["metrics"]["pre_train_accuracy"] == second["pattern_models"][0]["metrics"]["pre_train_accuracy"]
    # a cached model's stage run still gets the confusion matrix, of the new dev file
    mlflow.set_tracking_uri(cfg.tracking_uri())
    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("devswap").experiment_id],
        f"tags.mlflow.parentRunId = '{second['mlflow_run_id']}' and tags.stage = 'pattern-0-seed-1'",
    )
    cached_run = runs[0].info.run_id
    assert runs[0].data.tags["cached"] == "true"
    assert "confusion_dev.png" in {a.path for a in client.list_artifacts(cached_run)}
    confusion = mlflow.artifacts.load_dict(f"runs:/{cached_run}/confusion_dev.json")
    assert confusion["labels"] == ["pos", "neg"] and np.asarray(confusion["matrix"]).sum() == 11
    assert np.trace(confusion["matrix"]) == pytest.approx(11 * second["pattern_models"][0]["metrics"]["dev_accuracy"])


def test_lineage_reads_only_and_tells_a_missing_alias_from_a_missing_model(prefect_harness, tmp_path, tiny_model_dir):
    from flows.lineage import LineageError, champion_lineage
    from flows.pet_flow import pet_flow
    from pet_config.loading import load_config

    path = production_config(tmp_path, tiny_model_dir, "lineage")
    cfg = load_config(path)
    with pytest.raises(LineageError, match="no MLflow store"):
        champion_lineage(cfg)
    assert not cfg.work_path.exists()  # nothing created by a look
    pet_flow(str(path))
    with pytest.raises(LineageError, match=r"has no alias 'nosuch'; its aliases: \['champion'\]"):
        champion_lineage(cfg, "nosuch")
    other = load_config(path, {"tracking.registered_model": "other"})
    with pytest.raises(LineageError, match="no registered model 'other'"):
        champion_lineage(other)
