"""`pet init` on tasks beyond single-sentence classification (SuperGLUE's layouts, long reviews, labels
written by a spreadsheet): what it can run it configures and says what the model will not see; what it
cannot run (multiple choice, nested records) it refuses in one line before writing a config."""
from __future__ import annotations

import json

import pytest

from flows.cli import main
from pet_config.loading import load_config

TEXTS = ["a truly great movie with fine actors", "boring and far too long overall", "i loved every minute of it",
         "the plot made no sense at all", "wonderful story and good fun", "awful acting from start to end"]


@pytest.fixture(autouse=True)
def _no_small_pool_note(monkeypatch):
    """The tests give `pet init` pools of a handful of texts: its note on a small pool would be in every one of them
    (it has its own test, which sets the size back)."""
    from flows import init_cmd

    monkeypatch.setattr(init_cmd, "FEW_UNLABELED", 0)


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _init(tmp_path, *args):
    out = tmp_path / "cfg" / "my.yaml"
    return main(["init", *map(str, args), "-o", str(out)]), out


def test_reading_comprehension_reads_the_passage_and_the_question(tmp_path):
    # BoolQ's layout: `question` was taken as the only text and the passage the answer is in was dropped
    f = _jsonl(tmp_path / "boolq.jsonl", [{"question": f"is it {t}", "passage": f"{t}. " * 3, "idx": i,
                                            "label": i % 2 == 0} for i, t in enumerate(TEXTS)])
    code, out = _init(tmp_path, f)
    cfg = load_config(out)
    assert code == 0 and (cfg.data.train.text_a, cfg.data.train.text_b) == ("passage", "question")
    assert cfg.labels == ["False", "True"]  # JSON booleans, as `pet run` reads them


def test_a_column_of_words_the_model_will_not_see_is_named(tmp_path, capsys):
    # WiC: the target word sits in a column of its own; a pair is all a pattern reads
    f = _jsonl(tmp_path / "wic.jsonl", [{"word": t.split()[1], "sentence1": t, "sentence2": TEXTS[i - 1], "idx": i,
                                         "start1": 2, "label": i % 2 == 0} for i, t in enumerate(TEXTS)])
    code, _ = _init(tmp_path, f)
    err = capsys.readouterr().err
    assert code == 0 and "column(s) ['word'] are not used" in err and "'sentence1' and 'sentence2'" in err, err
    assert "idx" not in err and "start1" not in err  # ids and numbers are no texts


@pytest.mark.parametrize("args", [[], ["--text-column", "premise"], ["--text-column", "premise", "--label-column",
                                                                       "label"]])
def test_multiple_choice_is_refused_even_with_the_columns_given(tmp_path, capsys, args):
    # COPA: with --text-column the premise alone was classified into "0"/"1" (which choice is right): nonsense
    f = _jsonl(tmp_path / "copa.jsonl", [{"premise": t, "choice1": TEXTS[i - 1], "choice2": TEXTS[i - 2],
                                          "question": "cause", "label": i % 2} for i, t in enumerate(TEXTS)])
    code, out = _init(tmp_path, f, *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and not out.exists()
    assert "['choice1', 'choice2'] look like the answer options of a multiple-choice task" in err, err


def test_nested_records_are_refused_not_classified_by_another_column(tmp_path, capsys):
    # ReCoRD: the passage is a JSON object; init took its text form as the text and `source` as the label
    f = _jsonl(tmp_path / "record.jsonl", [{"source": ["a", "b"][i % 2], "passage": {"text": t, "entities": []},
                                            "qas": [{"query": t}], "idx": i} for i, t in enumerate(TEXTS)])
    code, out = _init(tmp_path, f)
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and "column(s) ['passage'] hold JSON objects or lists" in err, err


def test_metadata_objects_beside_a_text_are_left_out(tmp_path, capsys):
    f = _jsonl(tmp_path / "meta.jsonl", [{"text": t, "meta": {"source": "web"}, "label": ["good", "bad"][i % 2]}
                                         for i, t in enumerate(TEXTS)])
    code, out = _init(tmp_path, f)
    assert code == 0 and load_config(out).data.train.text_a == "text"
    assert "meta" not in capsys.readouterr().err


def test_one_number_written_two_ways_is_not_two_labels(tmp_path, capsys):
    # a label column saved by pandas with a gap reads 1.0 / 0.0; joined with a file of 1 / 0 it made 4 classes
    f = tmp_path / "mixed.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in zip(TEXTS, ["1.0", "0.0", "1", "0"] * 2)))
    code, out = _init(tmp_path, f)
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and "labels ['0', '0.0'] are one number" in err, err
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in zip(TEXTS, ["1.0", "0.0"] * 3)))
    code, out = _init(tmp_path, f)
    assert code == 0 and load_config(out).labels == ["0.0", "1.0"]  # floats written one way are fine


def test_unknown_suffix_names_the_suffixes_not_a_config_key(tmp_path, capsys):
    # the reader's message says "set `format`", a config key: init has no such option
    f = tmp_path / "train.txt"
    f.write_text("".join(f"POS {t}\n" for t in TEXTS))
    code, _ = _init(tmp_path, f)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "rename it as .csv, .tsv, .jsonl" in err and "`format`" not in err, err


def test_long_texts_are_said_to_be_cut(tmp_path, capsys):
    # IMDB reviews: max_length stops at 256 and the config's comment claimed 95% of the texts fit
    f = _jsonl(tmp_path / "imdb.jsonl", [{"text": " ".join([t] * 40), "label": i % 2} for i, t in enumerate(TEXTS)])
    code, out = _init(tmp_path, f)
    err, text = capsys.readouterr().err, out.read_text()
    assert code == 0 and "max_length: 256   # tokens per pattern-wrapped text (0% of the training texts fit" in text
    assert "100% of the training texts are longer than model.max_length 256" in err, err


def test_a_score_column_is_refused_as_regression(tmp_path, capsys):
    # STS-B: `--label-column score` made a classifier with a class per distinct score
    f = tmp_path / "stsb.tsv"
    f.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{t}\t{t[::-1]}\t{s}\n" for t, s in
                                                            zip(TEXTS * 2, ["0.000", "0", "1.2", "2.5", "3.8", "4.0"] * 2)))
    code, out = _init(tmp_path, f, "--label-column", "score")
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and "a score to predict (regression)" in err, err


def test_texts_without_labels_as_training_file_say_labels_are_missing(tmp_path, capsys):
    # RTE's pool without labels: "cannot tell the label column ...; give --label-column" sent the user to a flag
    f = _jsonl(tmp_path / "pool.jsonl", [{"premise": t, "hypothesis": t[::-1], "idx": i} for i, t in enumerate(TEXTS)])
    code, out = _init(tmp_path, f)
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and "no label column among ['premise', 'hypothesis', 'idx']" in err, err
    assert "needs a label on every row" in err


def test_seed_folders_of_two_tasks_get_two_names(tmp_path):
    # LM-BFF's SST-2/16-13/train.tsv and trec/16-13/train.csv were both named "16-13": one pipeline, one
    # registered model "16-13-classifier", the trec classifier competing with the SST-2 champion
    names = []
    for task in ("SST-2", "trec"):
        f = tmp_path / task / "16-13" / "train.csv"
        f.parent.mkdir(parents=True)
        f.write_text("text,label\n" + "".join(f'"{t}",{i % 2}\n' for i, t in enumerate(TEXTS)))
        out = tmp_path / f"{task}.yaml"
        assert main(["init", str(f), "-o", str(out)]) == 0
        names.append(load_config(out).name)
    assert names == ["sst-2-16-13", "trec-16-13"]


@pytest.mark.parametrize("rows, message", [
    # JSON Lines with a record lacking its label: pandas 3 kept a float NaN and sorting the labels raised TypeError
    ([{"text": t, "label": ["a", "b"][i % 2]} if i != 3 else {"text": t} for i, t in enumerate(TEXTS)],
     "1 bad row(s): line 4: empty label"),
    ([{"text": t, "label": ["a", "b"][i % 2] if i != 2 else None} for i, t in enumerate(TEXTS)],
     "1 bad row(s): line 3: empty label"),
])
def test_a_missing_label_is_a_bad_row_not_a_traceback(tmp_path, capsys, rows, message):
    code, out = _init(tmp_path, _jsonl(tmp_path / "train.jsonl", rows))
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and err.startswith(f"error: {tmp_path / 'train.jsonl'}: {message}"), err
    assert err.endswith("texts without one belong in the unlabeled file (pet init --unlabeled, or data.unlabeled)")


def test_dev_labels_written_as_other_numbers_are_named(tmp_path, capsys):
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{["1.0", "0.0"][i % 2]}\n' for i, t in enumerate(TEXTS)))
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\n" + "".join(f'"{t}",{i % 2}\n' for i, t in enumerate(TEXTS)))
    code, _ = _init(tmp_path, f, "--dev", dev)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "labels ['0', '1'] do not occur" in err and "(it writes ['0.0', '1.0']" in err, err


def test_one_file_in_two_roles_is_noted(tmp_path, capsys):
    # SuperGLUE has no labeled test: its val.jsonl given as --dev and --test (and as the pool) was taken silently
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{["a", "b"][i % 2]}\n' for i, t in enumerate(TEXTS)))
    val = tmp_path / "val.csv"
    val.write_text(f.read_text())
    code, _ = _init(tmp_path, f, "--dev", val, "--test", val, "--unlabeled", val)
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert code == 0 and [n.split(" are one file")[0] for n in notes] == [
        "note: --dev and --test", "note: --dev and --unlabeled", "note: --test and --unlabeled"], notes
    assert "measured on the file prompts and the champion are chosen on" in notes[0]


def _pairs(tmp_path, name="rte.csv"):
    import pandas as pd

    f = tmp_path / name
    pd.DataFrame({"sentence1": TEXTS, "sentence2": TEXTS[::-1],
                  "label": ["entailment", "not_entailment"] * 3}).to_csv(f, index=False)
    return f


@pytest.mark.parametrize("role", ["--unlabeled", "--dev", "--test"])
def test_a_pair_task_given_a_file_of_single_texts_is_refused(tmp_path, capsys, role):
    # RTE with a one-column pool: init wrote a config and `pet run` failed midway ("the example has no text_b")
    import pandas as pd

    other = tmp_path / "other.csv"
    cols = {"sentence1": TEXTS} if role == "--unlabeled" else {"sentence1": TEXTS, "label": ["entailment"] * 6}
    pd.DataFrame(cols).to_csv(other, index=False)
    code, out = _init(tmp_path, _pairs(tmp_path), role, other)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and not out.exists(), err
    assert f"{other}: no second text column for the pair task" in err and "'sentence2'" in err and role in err


@pytest.mark.parametrize("flags, message", [
    (["--text-pair-column", "label"], "--text-pair-column 'label' is the label column; the model would read the answer"),
    (["--text-column", "label"], "--text-column 'label' is the label column"),
    (["--text-column", "sentence1", "--text-pair-column", "sentence1"],
     "--text-column and --text-pair-column name one column ('sentence1')"),
])
def test_text_columns_that_are_the_label_or_each_other_are_refused(tmp_path, capsys, flags, message):
    code, out = _init(tmp_path, _pairs(tmp_path), *flags)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err and not out.exists(), err


def test_a_pair_task_is_named_and_counted_as_pairs(tmp_path, capsys):
    code, out = _init(tmp_path, _pairs(tmp_path), "--unlabeled", _pairs(tmp_path, "pool.csv"))
    assert code == 0
    assert "a text-pair task: the model reads 'sentence1' and 'sentence2' together" in capsys.readouterr().err
    head = out.read_text().splitlines()[:2]
    assert "6 labeled pairs" in head[0] and "unlabeled: 6 text pairs" in head[1], head


def test_a_single_text_task_does_not_pair_its_other_files_by_name(tmp_path, capsys):
    # train `question,label`; dev `question,sentence,label`: question->sentence is a pair by name, but not here
    import pandas as pd

    qs = [f"what is {t} ?" for t in TEXTS]
    pd.DataFrame({"question": qs, "label": ["a", "b"] * 3}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"question": qs, "sentence": TEXTS, "label": ["a", "b"] * 3}).to_csv(tmp_path / "dev.csv", index=False)
    code, out = _init(tmp_path, tmp_path / "train.csv", "--dev", tmp_path / "dev.csv")
    assert code == 0, capsys.readouterr().err
    cfg = load_config(out)
    assert (cfg.data.dev.text_a, cfg.data.dev.text_b) == ("question", None)


@pytest.mark.slow
def test_init_with_a_backbone_and_student_folder_then_run(prefect_harness, tmp_path, tiny_model_dir, capsys):
    # the newcomer's path end to end with models of the user's own (tiny BERT as both): the config init writes,
    # with the two folders written relative to it, is one `pet run` takes as it is (the steps cut for time only)
    import pandas as pd

    from conftest import toy_examples
    rows = [{"text": e.text_a, "label": {"pos": "1", "neg": "0"}[e.label]} for e in toy_examples(8)]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(rows[:8]).to_csv(tmp_path / "dev.csv", index=False)
    pd.DataFrame({"text": [r["text"] for r in rows]}).to_csv(tmp_path / "pool.csv", index=False)
    code, out = _init(tmp_path, tmp_path / "train.csv", "--unlabeled", tmp_path / "pool.csv", "--dev",
                      tmp_path / "dev.csv", "--backbone", tiny_model_dir, "--student", tiny_model_dir)
    assert code == 0
    capsys.readouterr()
    assert main(["run", str(out), "--json", "-q", "--set", "auto_prompts.prior_texts=8", "--set", "model.max_length=32",
                 "--set", "distill.train.max_steps=5", "--set", "pet.train.progress=false"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["pattern_models"]) == 2 and 0.0 <= summary["classifier_metrics"]["dev_accuracy"] <= 1.0
    assert load_config(out).model.path.startswith("..")  # written relative to the config, not the cwd
