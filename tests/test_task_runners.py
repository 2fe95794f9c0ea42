"""The pet flow on worker processes: a 2-worker Dask LocalCluster (prefect-dask) and a local Ray
cluster (prefect-ray, the optional `ray` extra; skipped without it). Training and labeling run in
the workers' processes, and the result is the same pipeline's."""
import importlib.util
import os

import mlflow
import pytest
import yaml

from test_production_loop import production_config


@pytest.mark.slow  # starts a Dask or Ray cluster of worker processes
@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_pet_flow_runs_its_stages_on_workers(kind, prefect_harness, tmp_path, tiny_model_dir):
    if importlib.util.find_spec(f"prefect_{kind}") is None:
        pytest.skip(f"prefect-{kind} is not installed")
    from flows.pet_flow import pet_flow
    from flows.runners import with_runner
    from pet_config.loading import load_config

    path = production_config(tmp_path, tiny_model_dir, kind)
    raw = yaml.safe_load(path.read_text())
    raw["runner"] = {"kind": kind, "workers": 2}
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)

    summary = with_runner(pet_flow, cfg)(str(path))

    assert len(summary["pattern_models"]) == 2 and summary["n_soft_labeled"] == 24
    assert summary["registered"]["version"] == "1"
    client = mlflow.MlflowClient(cfg.tracking_uri())
    runs = client.search_runs([client.get_experiment_by_name(kind).experiment_id])
    workers = {r.data.tags["stage"]: r.data.tags["worker"] for r in runs if "stage" in r.data.tags}
    here = f":{os.getpid()}"
    trained_on = {w for s, w in workers.items() if s.startswith("pattern-")}
    assert trained_on and not any(w.endswith(here) for w in trained_on)  # in the workers' processes
    assert workers["soft-label"].endswith(here)  # the stage run is the flow's; its tasks ran on workers
    logits = list((tmp_path / "work" / "shard_logits").glob("*/*.npy"))
    assert len(logits) == 2 * 3  # every (model, shard) pair, labeled by the workers
