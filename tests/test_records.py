"""The typed records between tasks and flows survive JSON (done.json, the ensemble manifest)."""
import dataclasses
import json

import pytest

from tasks.records import EnsembleManifest, PatternModelRef


def _model(key="k1", **kw):
    return PatternModelRef(key, f"/w/{key}", f"/w/{key}/model", "{text_a} It was {mask} .", 0, 1, 0, "run-1",
                           {"pre_train_accuracy": 0.5, "dev_accuracy": 0.75}, **kw)


def test_pattern_model_round_trips_through_json_and_ignores_later_fields():
    m = _model(cached=True, stage_run_id="stage-1")
    back = PatternModelRef.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m and back.pre_train_accuracy == 0.5
    # a done.json written by a later version may carry more: read what this one knows
    assert PatternModelRef.from_dict(dict(m.to_dict(), new_field=3)) == m
    with pytest.raises(TypeError):  # a missing field is an error, not a silent default
        PatternModelRef.from_dict({k: v for k, v in m.to_dict().items() if k != "model_path"})


def test_manifest_round_trips_and_old_manifests_get_the_config_weighting():
    manifest = EnsembleManifest("ens", [_model("a"), _model("b")], [0.5, 0.5], "accuracy", 2.0,
                                {"label_words": {"0": ["bad"], "1": ["good"]}}, ["{text_a} It was {mask} ."], "run-0")
    info = json.loads(json.dumps(manifest.to_dict()))
    assert EnsembleManifest.from_dict(info, "uniform", 1.0) == manifest
    old = {k: v for k, v in info.items() if k not in ("weighting", "temperature", "prefect_flow_run_id")}
    read = EnsembleManifest.from_dict(old, "uniform", 1.0)
    assert (read.weighting, read.temperature, read.prefect_flow_run_id) == ("uniform", 1.0, None)
    assert read.models == manifest.models and isinstance(read.models[0], PatternModelRef)


def test_a_manifest_this_version_cannot_read_is_a_clear_error(tmp_path):
    from flows.common import manifest_path, read_manifest
    from pet_config.loading import config_from_dict

    cfg = config_from_dict({"name": "x", "labels": ["0", "1"], "model": {"path": str(tmp_path)},
                            "data": {"train": {"path": "t.csv"}}, "patterns": ["{text_a} It was {mask} ."],
                            "verbalizer": {"label_words": {"0": ["bad"], "1": ["good"]}}, "work_dir": str(tmp_path)})
    path = manifest_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"ensemble_key": "e", "models": [{"key": "only"}]}))
    with pytest.raises(ValueError, match="not an ensemble manifest this version can read.*rerun `pet run`"):
        read_manifest(cfg)
    good = EnsembleManifest("e", [dataclasses.replace(_model(), path=str(tmp_path / "gone"))], [1.0], "accuracy", 2.0,
                            {}, [], "run-0")
    path.write_text(json.dumps(good.to_dict()))
    with pytest.raises(FileNotFoundError, match="pattern models that are gone"):
        read_manifest(cfg)
