import json
import os

import pytest
import yaml

from flows.cli import main, parse_overrides
from pet_config.loading import config_from_dict, load_config
from pet_config.schema import ConfigError


def write_config(tmp_path, model_dir, **changes):
    (tmp_path / "train.csv").write_text("text,label\nthe movie was great,pos\na bad film,neg\n")
    cfg = {
        "name": "toy",
        "model": {"path": str(model_dir), "max_length": 32},
        "data": {"train": {"path": "train.csv", "text_a": "text"}},
        "patterns": ["{text_a} it was {mask} ."],
        "verbalizer": {"label_words": {"pos": ["great"], "neg": ["bad"]}},
        "work_dir": "work",
    }
    for k, v in changes.items():
        cfg[k] = v
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_relative_paths_resolve_from_the_config_folder(tmp_path, tiny_model_dir):
    cfg = load_config(write_config(tmp_path, tiny_model_dir)).validate()
    assert cfg.spec("train").path == str(tmp_path / "train.csv")
    assert cfg.work_path == tmp_path / "work"
    assert cfg.labels == ["pos", "neg"]
    assert cfg.tracking_uri() == f"sqlite:///{tmp_path / 'work' / 'mlflow.db'}"


def test_one_configs_store_does_not_leak_into_the_next(tmp_path, tiny_model_dir):
    import mlflow

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = load_config(write_config(tmp_path / "a", tiny_model_dir))
    b = load_config(write_config(tmp_path / "b", tiny_model_dir))
    mlflow.set_tracking_uri(a.tracking_uri())  # what a flow does for config a (sets the env variable too)
    assert b.tracking_uri() == f"sqlite:///{tmp_path / 'b' / 'work' / 'mlflow.db'}"


def test_unknown_key_gets_a_suggestion(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="unknown key 'pattern'; did you mean 'patterns'"):
        config_from_dict({"pattern": ["x"]})
    with pytest.raises(ConfigError, match=r"config.pet.train: unknown key 'lr'"):
        config_from_dict({"pet": {"train": {"lr": 1}}})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"patterns": ["{text_a} it was good ."]}, "exactly once"),
        # no patterns and no words are left to automatic prompts, which need the labels
        ({"patterns": [], "verbalizer": {"label_words": {}}}, "labels. .at least two. are required"),
        ({"labels": ["pos", "neutral"]}, r"no words for label\(s\) 'neutral'"),
        ({"model": {"path": "/nonexistent/model"}}, "does not exist"),
        ({"seeds": []}, "seeds"),
        # the name is a file name (ensembles/NAME.json): a '/' would reach into another folder
        ({"name": "news/de"}, "config.name: String should match pattern"),
    ],
)
def test_bad_configs_fail_before_any_work(tmp_path, tiny_model_dir, changes, message):
    with pytest.raises(ValueError, match=message):
        load_config(write_config(tmp_path, tiny_model_dir, **changes)).validate()


@pytest.mark.parametrize("data, message", [
    # `pet validate` crashed with KeyError 'text_a' on one column named twice
    ({"train": {"path": "t.csv", "text_a": "s", "text_b": "s"}},
     "config.data.train: text_a and text_b are one column ('s')"),
    ({"train": {"path": "t.csv", "text_a": "s", "text_b": "label"}},
     "config.data: data.train: text_b and label are one column ('label'); the model would read the answer"),
    ({"train": {"path": "t.csv", "text_a": "s", "text_b": "h"}, "unlabeled": {"path": "u.csv", "text_a": "s"}},
     "data.unlabeled has no text_b, but the training examples are text pairs (data.train.text_b 'h')"),
    ({"train": {"path": "t.csv", "text_a": "s"}, "dev": {"path": "d.csv", "text_a": "s", "text_b": "h"}},
     "data.dev.text_b is 'h', but the training examples are single texts"),
])
def test_text_columns_must_be_read_as_train_reads_them(data, message):
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"labels": ["a", "b"], "data": data})
    assert message in str(exc.value) and "\n" not in str(exc.value), str(exc.value)


def test_overrides_are_parsed_as_yaml(tmp_path, tiny_model_dir):
    ov = parse_overrides(["pet.train.max_steps=7", "seeds=[1, 2]", "name=abc"])
    assert ov == {"pet.train.max_steps": 7, "seeds": [1, 2], "name": "abc"}
    cfg = load_config(write_config(tmp_path, tiny_model_dir), ov)
    assert cfg.pet.train.max_steps == 7 and cfg.seeds == [1, 2] and cfg.name == "abc"


def test_cli_validate_reports_counts(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    before = sorted(tmp_path.rglob("*"))
    assert main(["validate", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("validate ok: train 2 rows (") and "\n" not in line, line  # one line, as --help says
    assert main(["validate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train"]["n"] == 2
    assert sorted(tmp_path.rglob("*")) == before  # validate only reads: no work_dir, data copies or store


def test_validate_installs_nothing_and_lineage_creates_no_store(tmp_path, tiny_model_dir, capsys):
    # a model name that is not installed yet: `pet run` would install it, `pet validate` only reads
    models = tmp_path / "models"
    models.mkdir()
    distill = {"model_path": "all-minilm-l6-v2"}
    path = write_config(tmp_path, tiny_model_dir, distill=distill, models_dir=str(models))
    before = sorted(tmp_path.rglob("*"))
    assert main(["validate", str(path)]) == 0
    assert main(["lineage", str(path)]) == 2
    assert sorted(tmp_path.rglob("*")) == before


def test_cli_bad_data_exits_2_with_a_clear_message(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    (tmp_path / "train.csv").write_text("text,label\nthe movie was great,pos\nmeh,neutral\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown label 'neutral'" in err and "line 3" in err  # the file line an editor shows
    assert (tmp_path / "train.csv").read_text().endswith("meh,neutral\n")  # nothing lost


def test_cli_run_with_template_lacking_mask_fails_fast(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir, patterns=["{text_a} was good"])
    assert main(["run", str(path)]) == 2
    assert "must contain {mask} exactly once" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_relabel_without_a_trained_ensemble_says_what_to_do(tmp_path, tiny_model_dir, capsys):
    path = write_config(tmp_path, tiny_model_dir)
    (tmp_path / "new.csv").write_text("text\nfresh text\n")
    assert main(["relabel", str(path), "--unlabeled", str(tmp_path / "new.csv")]) == 2
    assert "run the pet flow" in capsys.readouterr().err


def test_search_with_nothing_enabled_says_so(tmp_path, tiny_model_dir, capsys):
    assert main(["search", str(write_config(tmp_path, tiny_model_dir))]) == 2
    assert "enable template_search and/or label_word_search" in capsys.readouterr().err


@pytest.mark.parametrize("search, needle", [
    ({"label_word_search": {"enabled": True}}, "label_word_search needs a template"),
    ({"template_search": {"enabled": True, "generator_path": "t5"}}, "template_search needs label words"),
])
def test_search_on_a_config_without_prompts_says_what_it_needs(tmp_path, tiny_model_dir, capsys, search, needle):
    # a `pet init` config leaves patterns and label words to pet run's automatic prompts; search has none
    path = write_config(tmp_path, tiny_model_dir, patterns=[], verbalizer={"label_words": {}}, labels=["neg", "pos"],
                        **search)
    assert main(["search", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "work").exists()


def test_lineage_before_any_run_says_what_to_do(tmp_path, tiny_model_dir, capsys):
    assert main(["lineage", str(write_config(tmp_path, tiny_model_dir))]) == 2
    assert "run the pet flow first" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override,needle",
    [
        ({"pet": {"train": {"max_steps": "fifty"}}}, "config.pet.train.max_steps: Input should be a valid integer"),
        ({"pet": {"train": {"max_steps": -5}}}, "config.pet.train.max_steps: Input should be greater than or equal to 1"),
        ({"pet": {"temperature": "hot"}}, "config.pet.temperature: Input should be a valid number"),
        ({"model": {"max_length": 1.5}}, "config.model.max_length: Input should be a valid integer"),
        ({"distill": {"train": {"temperature": 3.0}}}, "config.distill.train: unknown key 'temperature'; set pet.temperature"),
        ({"pet": {"train": {"temperature": 3.0}}}, "config.pet.train: unknown key 'temperature'; set pet.temperature"),
        ({"tracking": {"promote_metric": "test_f1"}}, "config.tracking.promote_metric: Input should be 'dev_accuracy'"),
        ({"pet": {"ensemble_weighting": "votes"}}, "config.pet.ensemble_weighting: Input should be 'accuracy' or 'uniform'"),
        ({"pet": {"demonstrations": {"filter": "knn"}}}, "config.pet.demonstrations.filter: Input should be 'none' or 'similarity'"),
        ({"model": {"device": "tpu"}}, "config.model.device: Input should be 'auto', 'cpu' or 'cuda'"),
        ({"pet": {"soft_prompt": {"kind": "magic"}}}, "config.pet.soft_prompt.kind: Input should be 'none'"),
    ],
)
def test_wrong_types_and_ranges_name_the_key(override, needle, tmp_path, tiny_model_dir):
    from pet_config.schema import ConfigError
    from pet_config.loading import config_from_dict

    base = {
        "model": {"path": str(tiny_model_dir)},
        "data": {"train": {"path": "t.csv"}},
        "patterns": ["{text_a} it was {mask} ."],
        "verbalizer": {"label_words": {"a": ["x"], "b": ["y"]}},
    }
    for key, value in override.items():
        base[key] = {**base.get(key, {}), **value}
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        config_from_dict(base, tmp_path).validate()


def test_progress_bars_of_mlflow_and_hugging_face_only_on_a_terminal(monkeypatch):
    # README: bars only on a terminal; MLflow's "Downloading artifacts" bars filled the log of every
    # registration when the output went to a file
    import io

    from flows import quiet

    env = {k: v for k, v in os.environ.items() if "PROGRESS" not in k}
    monkeypatch.setattr(os, "environ", env)  # what quiet_noise sets stays in this test
    monkeypatch.setattr(quiet.sys, "stderr", io.StringIO())
    quiet.quiet_noise(1)  # 1: no logger levels or warning filters changed for the tests that follow
    assert env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false" and env["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


@pytest.mark.parametrize("argv, needle", [
    (["predict", "c.yaml", "in.csv", "-o", "out.csv", "--engine", "bogus"], "argument --engine: invalid choice: 'bogus'"),
    (["predict", "c.yaml", "in.csv", "-o", "out.csv", "--batch-size", "abc"], "invalid int value: 'abc'"),
    (["run"], "the following arguments are required: config"),
    (["bogus"], "invalid choice: 'bogus'"),
])
def test_a_bad_flag_is_one_line_with_exit_code_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and needle in err[0] and err[0].startswith("error: pet"), err
