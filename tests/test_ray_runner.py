"""The pet flow on a local Ray cluster (prefect-ray, the optional `ray` extra; skipped without it)."""
import os

import mlflow
import pytest
import yaml

from test_production_loop import _write_config

pytest.importorskip("prefect_ray")


def test_pet_flow_runs_its_stages_on_ray_workers(prefect_harness, tmp_path, tiny_model_dir):
    from flows.pet_flow import pet_flow
    from flows.runners import with_runner
    from prompt_models.config import load_config

    path = _write_config(tmp_path, tiny_model_dir, "ray")
    raw = yaml.safe_load(path.read_text())
    raw["runner"] = {"kind": "ray", "workers": 2}
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)

    summary = with_runner(pet_flow, cfg)(str(path))

    assert len(summary["pattern_models"]) == 2 and summary["registered"]["version"] == "1"
    client = mlflow.MlflowClient(cfg.tracking_uri())
    runs = client.search_runs([client.get_experiment_by_name("ray").experiment_id])
    trained_on = {r.data.tags["worker"] for r in runs if r.data.tags.get("stage", "").startswith("pattern-")}
    assert trained_on and not any(w.endswith(f":{os.getpid()}") for w in trained_on)
