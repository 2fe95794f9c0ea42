"""LM-BFF search, iPET, demonstrations, soft prompts and LoRA wired through the flows (tiny models)."""
import mlflow
import pandas as pd
import pytest
import yaml

from conftest import toy_examples


pytestmark = pytest.mark.slow  # the whole pet flow with search, iPET, demonstrations, soft prompts, LoRA


@pytest.fixture(scope="module")
def stage_config(tmp_path_factory, tiny_model_dir, tiny_t5_dir):
    root = tmp_path_factory.mktemp("stages")
    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(8)]).to_csv(root / "train.csv", index=False)
    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(4)]).to_csv(root / "dev.csv", index=False)
    subjects = ["the movie", "the plot", "a film", "the story", "the actors"]
    verdicts = ["was great", "was awful", "is good", "is bad", "was fun", "was boring", "is wonderful", "is terrible"]
    pd.DataFrame({"text": [f"{s} {v}" for s in subjects for v in verdicts]}).to_csv(root / "unlabeled.csv", index=False)
    fast = {"learning_rate": 0.003, "max_steps": 15, "batch_size": 8, "progress": False}
    cfg = {
        "name": "toy-stages",
        "model": {"path": str(tiny_model_dir), "max_length": 48},
        "data": {
            "train": {"path": "train.csv", "text_a": "text"},
            "dev": {"path": "dev.csv", "text_a": "text"},
            "test": {"path": "dev.csv", "text_a": "text"},
            "unlabeled": {"path": "unlabeled.csv", "text_a": "text"},
        },
        "patterns": ["{text_a} it was {mask} ."],
        "verbalizer": {"label_words": {"pos": ["great", "good"], "neg": ["awful", "bad"]}},
        "seeds": [1, 2],
        "pet": {
            "train": fast,
            "shard_size": 16,
            "demonstrations": {"enabled": True, "filter": "similarity"},
            "soft_prompt": {"kind": "p_tuning", "num_tokens": 2},
            "lora": {"enabled": True, "r": 4, "alpha": 8},
        },
        "distill": {"train": fast},
        "ipet": {"enabled": True, "generations": 2, "growth_factor": 2, "sample_fraction": 0.5},
        "template_search": {
            "enabled": True, "generator_path": str(tiny_t5_dir), "num_candidates": 3, "beam_width": 3,
            "max_new_tokens": 6, "top_templates": 2, "train": fast,
        },
        "label_word_search": {"enabled": True, "top_k_per_class": 3, "num_candidates": 4, "rerank_top": 2, "train": fast},
        "tracking": {"experiment": "stages", "registered_model": "toy-stages"},
        "work_dir": "work",
        "parallelism": 2,  # tasks of a stage run concurrently (each opens its own nested MLflow run)
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stage_run(prefect_harness, stage_config):
    from flows.pet_flow import pet_flow
    from flows.runners import with_runner
    from pet_config.loading import load_config

    # the config's runner: threads, `parallelism` (2) tasks of a stage at once
    return with_runner(pet_flow, load_config(stage_config))(str(stage_config))


def test_search_ipet_demos_and_soft_prompts_run_through_pet(stage_run, stage_config):
    from pet_config.loading import load_config

    summary = stage_run
    assert len(summary["templates"]) == 2
    assert summary["templates"][0] == "{text_a} it was {mask} ."  # what the tiny T5 was taught
    models = summary["pattern_models"]
    assert len(models) == 4 and {m["generation"] for m in models} == {2}
    assert summary["registered"]["version"] == "1"

    cfg = load_config(stage_config)
    client = mlflow.MlflowClient(cfg.tracking_uri())
    parent = client.get_run(summary["mlflow_run_id"])
    assert {"accuracy_by_model.png", "accuracy_by_model.json"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    stages = {r.data.tags["stage"] for r in children}
    assert {"label-word-search", "template-search", "ipet-generation-1", "ipet-generation-2"} <= stages
    assert {f"pattern-{p}-seed-{s}-gen-{g}" for p in (0, 1) for s in (1, 2) for g in (1, 2)} <= stages
    gen1 = next(r for r in children if r.data.tags["stage"] == "ipet-generation-1")
    added = [v for k, v in gen1.data.metrics.items() if k.startswith("added_")]
    # at most 16 * 2^1 - 16 per model; a label the teachers never predict adds nothing
    assert len(added) == 4 and all(0 < v <= 16 for v in added)
    # every evaluation logs its confusion matrices (tasks.figures)
    for stage in ("evaluate-ensemble", "evaluate-classifier", "pattern-0-seed-1-gen-2"):
        run = next(r for r in children if r.data.tags["stage"] == stage)
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {f"confusion_{s}.{e}" for s in ("dev", "test") for e in ("png", "json")} <= names, stage


def test_search_flow_alone_reuses_cached_scores(stage_run, stage_config):
    from flows.search_flows import search_flow

    result = search_flow(str(stage_config))
    assert result["templates"] == stage_run["templates"]
    assert set(result["label_words"]) == {"pos", "neg"}
