"""Bad input a new user tried (issue 15): each gets exit code 2 and ONE line on stderr naming the
problem, before any work, and leaves nothing behind in work_dir. Run through the CLI's ``main``."""
import pytest
import yaml

from flows.cli import main


def write_config(root, model_dir, **changes):
    (root / "train.csv").write_text("text,label\nthe movie was great,pos\na bad film,neg\n")
    (root / "unlabeled.csv").write_text("text\nthe plot was fun\na slow film\n")
    cfg = {
        "name": "toy",
        "model": {"path": str(model_dir), "max_length": 32},
        "data": {"train": {"path": "train.csv", "text_a": "text"}, "unlabeled": {"path": "unlabeled.csv", "text_a": "text"}},
        "patterns": ["{text_a} it was {mask} ."],
        "verbalizer": {"label_words": {"pos": ["great"], "neg": ["bad"]}},
        "work_dir": "work",
    }
    cfg.update(changes)
    path = root / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def files_under(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*")) if folder.exists() else []


def fake_ensemble(root) -> None:
    """A work folder in which `pet run` has left an ensemble (relabel's precondition)."""
    path = root / "work" / "ensembles" / "toy.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"ensemble_key": "k", "models": [], "weights": [], "weighting": "uniform", "temperature": 2.0,'
                    ' "verbalizer": {"label_words": {"pos": ["great"], "neg": ["bad"]}}, "templates": [], "mlflow_run_id": "r"}')


def test_relabel_checks_its_unlabeled_file_before_the_flow(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    fake_ensemble(tmp_path)
    before = files_under(tmp_path / "work")
    (tmp_path / "new.csv").write_text("text\nfresh text\n\"\"\n")  # an empty text on line 3
    assert main(["relabel", str(path), "--unlabeled", str(tmp_path / "new.csv")]) == 2
    line = one_line_error(capsys)
    assert "new.csv" in line and "line 3" in line
    assert files_under(tmp_path / "work") == before  # no Arrow cache, no data copy, no MLflow store


def test_relabel_with_a_missing_column_names_it(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    fake_ensemble(tmp_path)
    (tmp_path / "new.csv").write_text("sentence\nfresh text\n")
    assert main(["relabel", str(path), "--unlabeled", str(tmp_path / "new.csv")]) == 2
    line = one_line_error(capsys)
    assert "new.csv" in line and "text" in line


@pytest.mark.parametrize("length", [0, 3])
def test_max_length_too_short_for_the_templates(tmp_path, tiny_model_dir, capsys, length):
    path = write_config(tmp_path, tiny_model_dir)
    assert main(["run", str(path), "--set", f"model.max_length={length}"]) == 2
    line = one_line_error(capsys)
    assert "model.max_length" in line
    assert not (tmp_path / "work").exists()


def test_max_length_too_short_by_the_tokenizer(tmp_path, tiny_model_dir, capsys):
    # [CLS] it was [MASK] . [SEP] plus one token of text: 7 tokens; 6 passes any count of words
    path = write_config(tmp_path, tiny_model_dir)
    assert main(["run", str(path), "--set", "model.max_length=6"]) == 2
    line = one_line_error(capsys)
    assert "model.max_length" in line and "{text_a} it was {mask} ." in line
    assert not (tmp_path / "work").exists()


def test_work_dir_under_a_regular_file(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "afile").write_text("not a folder")
    path = write_config(tmp_path, tiny_model_dir, work_dir="afile/work")
    assert main(["run", str(path)]) == 2
    line = one_line_error(capsys)
    assert "work_dir" in line and "afile" in line and "not a folder" in line
    assert "unlabeled" not in line


def test_yaml_syntax_error_names_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: toy\npatterns: [\"{text_a} it was {mask}\"\nseeds: [1]\n")
    assert main(["validate", str(path)]) == 2
    line = one_line_error(capsys)
    assert "broken.yaml" in line and "line 3" in line and "unicode string" not in line


def test_verbalizer_missing_a_label_names_it(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir, labels=["pos", "neg"],
                        verbalizer={"label_words": {"pos": ["great"]}})
    assert main(["validate", str(path)]) == 2
    line = one_line_error(capsys)
    assert "'neg'" in line and "verbalizer.label_words" in line and "two labels" not in line


def test_a_misspelt_label_words_key_is_named(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir, labels=["pos", "neg"],
                        verbalizer={"label_words": {"pos": ["great"], "nge": ["bad"]}})
    assert main(["validate", str(path)]) == 2
    assert "no words for label(s) 'neg'; it has 'nge', not a label" in one_line_error(capsys)


def test_zero_temperature_names_its_key(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    assert main(["validate", str(path), "--set", "pet.temperature=0"]) == 2
    assert "pet.temperature" in one_line_error(capsys)


def test_set_without_equals_exits_2(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    assert main(["run", str(path), "--set", "pet.temperature"]) == 2
    assert "--set" in one_line_error(capsys)
    assert not (tmp_path / "work").exists()


def test_a_refused_unlabeled_file_leaves_no_arrow_cache(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    (tmp_path / "unlabeled.csv").write_text("text\nfine\n\"\"\n")
    assert main(["run", str(path)]) == 2
    assert "unlabeled.csv" in one_line_error(capsys)
    assert not (tmp_path / "work").exists()


def test_relabel_without_an_ensemble_leaves_nothing(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    (tmp_path / "new.csv").write_text("text\nfresh text\n")
    assert main(["relabel", str(path), "--unlabeled", str(tmp_path / "new.csv")]) == 2
    assert "pet run" in one_line_error(capsys)
    assert not (tmp_path / "work").exists()


def test_predict_refuses_empty_texts_like_training(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    (tmp_path / "in.csv").write_text("text\na good film\n\"\"\nbad\n")
    out = tmp_path / "out.csv"
    assert main(["predict", str(path), str(tmp_path / "in.csv"), "--output", str(out)]) == 2
    line = one_line_error(capsys)
    assert "in.csv" in line and "line 3" in line and "empty" in line
    assert not out.exists()


def test_predict_refuses_to_write_over_its_input(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    src = tmp_path / "in.csv"
    src.write_text("text\na good film\n\nbad\n")
    before = src.read_bytes()
    assert main(["predict", str(path), str(src), "--output", str(tmp_path / "." / "in.csv")]) == 2
    assert "is the input file" in one_line_error(capsys)
    assert src.read_bytes() == before


def test_blank_lines_of_json_lines_are_found(tmp_path):
    from pet_io.sources import blank_lines

    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n\n  \n{"text": "b"}\n')
    assert blank_lines(path, "jsonl") == [2, 3]


def test_no_stage_starts_after_a_stop(tmp_path, tiny_model_dir):
    """After Ctrl-C (STOP set) the next task's stage run is never opened: no FAILED MLflow run."""
    from pet_config.loading import load_config
    from prompt_models.training import STOP, StopRequested
    from tasks.tracking import stage_run

    cfg = load_config(write_config(tmp_path, tiny_model_dir))
    STOP.set()
    try:
        with pytest.raises(StopRequested):
            with stage_run(cfg, None, "pattern-1-seed-1"):
                raise AssertionError("the stage body ran")
    finally:
        STOP.clear()
    assert not (tmp_path / "work").exists()  # no MLflow store, so no run in it


def test_register_names_the_right_reason_when_it_reuses_the_champion(tmp_path, tiny_model_dir):
    import mlflow

    from pet_config.loading import load_config
    from tasks.promotion import decide

    cfg = load_config(write_config(tmp_path, tiny_model_dir))
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    client.create_registered_model(cfg.tracking.registered_model)
    first = client.create_model_version(cfg.tracking.registered_model, str(tmp_path), tags={"classifier_key": "k"}).version
    assert decide(cfg, {}, client, str(first), {}).reason == "no other champion"
    # the same classifier registered again: MLflow's version is reused, and it is the champion already
    again = decide(cfg, {}, client, str(first), {})
    assert again.promoted and again.champion_version == str(first)
    assert "already the champion" in again.reason and "no other champion" not in again.reason


def test_a_classifier_no_better_than_the_majority_label_is_never_champion(tmp_path, tiny_model_dir):
    # an RTE trial: the first classifier, 0.4375 on dev (below always answering one label), became champion
    import json

    import mlflow

    from pet_config.loading import load_config
    from tasks.promotion import decide
    from tasks.records import SplitFile

    cfg = load_config(write_config(tmp_path, tiny_model_dir))
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps({"text_a": f"t{i}", "label": lab}) + "\n" for i, lab in enumerate("aaab")))
    data = {"dev": SplitFile(str(dev), "d", 4, str(dev))}
    cfg.tracking.promote_metric = "dev_accuracy"  # the config has no dev file: the split is given here
    uri = f"sqlite:///{tmp_path / 'reg.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    name = cfg.tracking.registered_model
    client.create_registered_model(name)
    first, second = (client.create_model_version(name, str(tmp_path)).version for _ in range(2))
    low = decide(cfg, data, client, str(first), {"dev_accuracy": 0.75})
    assert not low.promoted and low.alias == cfg.tracking.challenger_alias
    assert "dev_accuracy 0.7500 is no better than always answering 'a' (0.7500)" in low.reason
    assert decide(cfg, data, client, str(second), {"dev_accuracy": 1.0}).promoted
    assert str(client.get_model_version_by_alias(name, cfg.tracking.alias).version) == str(second)
    # macro-F1 of a constant answer: one class of two found with F1 2*3/(2*3+1) = 0.857, the other 0
    cfg.tracking.promote_metric = "dev_macro_f1"
    assert "(0.4286)" in decide(cfg, data, client, str(first), {"dev_macro_f1": 0.4}).reason
    # a dev set of one label cannot tell a classifier from a constant: no floor (it would refuse a perfect one)
    dev.write_text("".join(json.dumps({"text_a": f"t{i}", "label": "a"}) + "\n" for i in range(4)))
    cfg.tracking.promote_metric = "dev_accuracy"
    third = client.create_model_version(name, str(tmp_path)).version
    assert decide(cfg, data, client, str(third), {"dev_accuracy": 1.0}).promoted


def test_run_or_relabel_without_unlabeled_data_stops_before_the_flow(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir, data={"train": {"path": "train.csv", "text_a": "text"}})
    assert main(["run", str(path)]) == 2
    assert "data.unlabeled" in one_line_error(capsys)
    fake_ensemble(tmp_path)
    assert main(["relabel", str(path)]) == 2
    assert "--unlabeled" in one_line_error(capsys)
