"""The whole pet flow on a tiny causal LM: search, iPET, demonstrations, soft prompt, LoRA, and
distillation into a different (encoder) student."""
import mlflow
import pandas as pd
import pytest
import yaml

from conftest import build_tiny_causal_lm, toy_examples


pytestmark = pytest.mark.slow  # the whole pet flow with search, iPET, demonstrations, soft prompts, LoRA


@pytest.fixture(scope="module")
def causal_config(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("causal_flow")
    llama = build_tiny_causal_lm(root / "tiny_llama")
    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(8)]).to_csv(root / "train.csv", index=False)
    pd.DataFrame([{"text": e.text_a, "label": e.label} for e in toy_examples(4)]).to_csv(root / "dev.csv", index=False)
    subjects = ["the movie", "the plot", "a film", "the story"]
    verdicts = ["was great", "was awful", "is good", "is bad", "was fun", "was boring"]
    pd.DataFrame({"text": [f"{s} {v}" for s in subjects for v in verdicts]}).to_csv(root / "unlabeled.csv", index=False)
    fast = {"learning_rate": 0.003, "max_steps": 12, "batch_size": 8, "progress": False}
    cfg = {
        "name": "toy-causal",
        "model": {"path": str(llama), "max_length": 48},
        "data": {
            "train": {"path": "train.csv", "text_a": "text"},
            "dev": {"path": "dev.csv", "text_a": "text"},
            "test": {"path": "dev.csv", "text_a": "text"},
            "unlabeled": {"path": "unlabeled.csv", "text_a": "text"},
        },
        "patterns": ["{text_a} it was {mask}"],
        # "wonderful" is several tokens in the tiny BPE vocabulary: scored exactly through the flow
        "verbalizer": {"label_words": {"pos": ["great", "wonderful"], "neg": ["awful"]}},
        "seeds": [1, 2],
        "pet": {
            "train": {**fast, "mlm_alpha": 0.01},  # the auxiliary LM loss: pattern models only
            "shard_size": 10,
            "demonstrations": {"enabled": True, "filter": "similarity", "encoder_path": str(tiny_model_dir)},
            "soft_prompt": {"kind": "prompt_tuning", "num_tokens": 2},
            "lora": {"enabled": True, "r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            "label_precision": "bf16",  # checked against fp32 for every model, whatever the CPU and the texts' number
        },
        # a different, encoder-only student: the tiny BERT gets a fresh classification head
        # and SetFit's pair step with distill.with_train off (2 labels): the labeled examples make pairs only
        "distill": {"model_path": str(tiny_model_dir), "train": fast, "pair_tuning": True},
        "ipet": {"enabled": True, "generations": 1, "growth_factor": 2, "sample_fraction": 0.5},
        "template_search": {
            "enabled": True, "generator_path": str(llama), "num_candidates": 2, "beam_width": 2,
            "max_new_tokens": 3, "top_templates": 1, "train": fast,
        },
        "label_word_search": {"enabled": True, "top_k_per_class": 3, "num_candidates": 3, "rerank_top": 2, "train": fast},
        "tracking": {"experiment": "causal", "registered_model": "toy-causal"},
        "work_dir": "work",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_pet_flow_runs_end_to_end_on_a_causal_lm(prefect_harness, causal_config, monkeypatch):
    from flows.pet_flow import pet_flow
    from prompt_models import label_precision

    monkeypatch.setattr(label_precision, "SAMPLE_TEXTS", 4)  # a shard of 10: 4 texts checked, 6 labeled after
    from pet_config.loading import load_config
    from prompt_models.distill import SequenceClassifier
    from prompt_models.pet import PETModel

    summary = pet_flow(str(causal_config))
    assert all(t.rstrip().endswith("{mask}") for t in summary["templates"])  # causal: the word comes last
    models = summary["pattern_models"]
    assert len(models) == 2 * len(summary["templates"]) and {m["generation"] for m in models} == {1}
    cfg = load_config(causal_config)
    assert PETModel.load(cfg.work_path / "pattern_models" / models[0]["key"] / "model").causal
    assert summary["registered"]["version"] == "1"
    clf = SequenceClassifier.load(summary["classifier"]["path"])
    assert type(clf.model).__name__ == "BertForSequenceClassification"

    client = mlflow.MlflowClient(cfg.tracking_uri())
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    stages = {r.data.tags["stage"] for r in children}
    assert {"label-word-search", "template-search", "ipet-generation-1", "distill", "register"} <= stages
    labeled = client.search_runs([parent.info.experiment_id], "tags.stage = 'soft-label'")
    precisions = {k: v for r in labeled for k, v in r.data.tags.items() if k.startswith("label_precision.")}
    assert precisions and set(precisions.values()) <= {"bf16", "fp32"}
    agreements = [v for r in labeled for k, v in r.data.metrics.items() if k.startswith("bf16_agreement.")]
    assert len(agreements) == len(precisions) and all(0.0 <= a <= 1.0 for a in agreements)
    distill = next(r for r in children if r.data.tags["stage"] == "distill").data.metrics
    assert distill["n_gold_labeled"] == 0 and distill["n_pairs"] > 0
