"""`pet init`: a config `pet run` accepts, from CSV/TSV/JSONL with codes or words as labels; one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from pet_config.loading import load_config
from pet_zoo.resolve import resolve_models
from tasks.data_tasks import read_splits

TEXTS = ["a truly great movie with fine actors", "boring and far too long overall", "i loved every minute of it",
         "the plot made no sense at all", "wonderful story and good fun", "awful acting from start to end"]



@pytest.fixture(autouse=True)
def _no_small_pool_note(monkeypatch):
    """The tests give `pet init` pools of a handful of texts: its note on a small pool would be in every one of them
    (it has its own test, which sets the size back)."""
    from flows import init_cmd

    monkeypatch.setattr(init_cmd, "FEW_UNLABELED", 0)

def _rows(labels):
    return [(t, labels[i % 2]) for i, t in enumerate(TEXTS)]


def _init(tmp_path, *args):
    out = tmp_path / "cfg" / "my.yaml"
    code = main(["init", *map(str, args), "-o", str(out)])
    return code, out


def _check_runs(out, labels):
    cfg = resolve_models(load_config(out), install=False).validate()  # what `pet validate` does first
    assert cfg.labels == labels and cfg.needs_auto_prompts
    assert cfg.model.path.endswith("smollm2-135m-instruct") and cfg.distill.model_path.endswith("all-minilm-l6-v2")
    splits = read_splits(cfg)
    assert len(splits["train"][1]) == len(TEXTS)
    return cfg, splits


def test_csv_with_header_and_word_labels(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text("id,review,sentiment\n" + "".join(f'{i},"{t}",{lab}\n' for i, (t, lab) in enumerate(_rows(["positive", "negative"]))))
    unl = tmp_path / "more.jsonl"
    unl.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    assert code == 0
    cfg, splits = _check_runs(out, ["negative", "positive"])
    assert cfg.data.train.text_a == "review" and cfg.data.train.label == "sentiment"
    assert cfg.data.unlabeled.text_a == "text" and len(splits["unlabeled"][1]) == len(TEXTS)
    assert "patterns: []" in out.read_text()  # commented, complete, prompts left to the pipeline


def test_the_next_command_is_printed_quoted(tmp_path, capsys):
    f = tmp_path / "my labels.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["pos", "neg"])))
    out = tmp_path / "my config.yaml"
    assert main(["init", str(f), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip().endswith(f"next: pet run '{out}'")  # pasted as it is, it runs
    # no --unlabeled: the training texts stand in, said on the terminal, not only in the config's comments
    assert "note: no --unlabeled file: the student learns the ensemble's labels of the" in printed.err


def test_headerless_tsv_with_code_labels(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_text("".join(f"{lab}\t{t}\n" for t, lab in _rows(["0", "1"])))
    code, out = _init(tmp_path, f, "--dev", f)
    assert code == 0
    cfg, splits = _check_runs(out, ["0", "1"])
    assert cfg.data.train.header is False and cfg.data.train.text_a == "1" and cfg.data.train.label == "0"
    assert "dev" in splits and yaml.safe_load(out.read_text())["data"]["unlabeled"]["label"] is None
    assert 'its columns are named by position from "0"' in out.read_text()


def test_two_text_columns_named_but_for_a_1_and_a_2_are_a_pair(tmp_path):
    # LM-BFF's MRPC file as it comes: "Quality", "#1 ID", "#2 ID", "#1 String", "#2 String" (was: several text-like)
    f = tmp_path / "msr.tsv"
    f.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + "".join(
        f"{lab}\t{100 + i}\t{200 + i}\t{t}\t{TEXTS[-1 - i]}\n" for i, (t, lab) in enumerate(_rows(["0", "1"]))))
    code, out = _init(tmp_path, f)
    assert code == 0
    cfg, _ = _check_runs(out, ["0", "1"])
    assert (cfg.data.train.text_a, cfg.data.train.text_b, cfg.data.train.label) == ("#1 String", "#2 String", "Quality")


def test_jsonl_with_codes(tmp_path):
    f = tmp_path / "data.jsonl"
    f.write_text("".join(json.dumps({"sentence": t, "label": lab}) + "\n" for t, lab in _rows(["LABEL_0", "LABEL_1"])))
    code, out = _init(tmp_path, f, "--name", "demo")
    assert code == 0
    cfg, _ = _check_runs(out, ["LABEL_0", "LABEL_1"])
    assert cfg.name == "demo" and cfg.data.unlabeled.path == cfg.data.train.path  # no unlabeled file given


@pytest.mark.parametrize("content, args, message", [
    (None, [], "data file not found"),
    ("", [], "the file is empty (0 bytes)"),  # was pandas' "No columns to parse from file"
    ("title,body,label\n" + "".join(f'"{t} x","{t}",{i % 2}\n' for i, t in enumerate(TEXTS)), [],
     "several text-like columns"),
    ("text,label\n" + "".join(f'"{t}",same\n' for t in TEXTS), [], "one label"),
    ("text,label\n" + "".join(f'"{t}",{i % 2}\n' for i, t in enumerate(TEXTS)), ["--label-column", "y"], "no column 'y'"),
    ("a,b,c\n" + "".join(f'"{t}","{t}",{t[:3]}\n' for t in TEXTS), [], "give --label-column"),
    # two short columns in a file without a header line (CoLA's source code and label): the message shows their
    # values and says how such columns are named
    ("".join(f'src{i % 2},{i % 2},"{t}"\n' for i, t in enumerate(TEXTS)), [],
     "cannot tell the label column among ['0', '1'] ('0': 'src0', 'src1'; '1': '0', '1') (a file without a header "
     "line: columns are numbered from 0); give --label-column"),
    # a whitespace-only text (as on line 3 of LM-BFF's cr/16-13/train.csv): `pet run` would refuse the config
    ("text,label\n" + "".join(f'"{t}",{i % 2}\n' for i, t in enumerate(TEXTS)) + '" ",1\n', [],
     "1 bad row(s): line 8: empty 'text'"),
    # a typo in the file, not two classes
    ("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in zip(TEXTS, ["Good", "good", "bad"] * 2)), [],
     "labels ['Good', 'good'] differ only in case"),
    ("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in zip(TEXTS, ["Good", "good", "BAD", "bad"] * 2)), [],
     "labels ['BAD', 'bad'] differ only in case; ['Good', 'good'] differ only in case"),  # every slip at once
    # a nested record: the column asked for is set aside, and the message says why it is not listed
    ("", ["--text-column", "data"], "no column 'data' (given by --text-column); the file has ['id', 'label'] "
     "(['data'] hold JSON objects or lists and are set aside: flatten the file)"),
    ("text,label\n" + "".join(f'"{t}",{i % 2}\n' for i, t in enumerate(TEXTS)), ["--unlabeled-text-column", "body"],
     "--unlabeled-text-column names a column of the --unlabeled file: give that file too"),
    ("text,label\n" + "".join(f'"{t}",\n' for t in TEXTS), [], "column 'label' is empty"),
])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, capsys, content, args, message):
    f = tmp_path / "in.csv"
    if "data" in args:
        f = tmp_path / "in.jsonl"
        f.write_text("".join(json.dumps({"id": i, "data": {"text": t}, "label": lab}) + "\n"
                             for i, (t, lab) in enumerate(_rows(["pos", "neg"]))))
    elif content is not None:
        f.write_text(content)
    code, out = _init(tmp_path, f, *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_column_names_with_a_text_word_and_an_unlabeled_file_named_otherwise(tmp_path, capsys):
    # a spreadsheet's "Review Text" of short texts is found by its name; a pool exported elsewhere names its text
    # column differently, and the flag for it is --unlabeled-text-column (--text-column is the training file's)
    f = tmp_path / "train.csv"
    f.write_text("ID,Review Text,Sentiment\n" + "".join(f'{i},"{t.split()[0]}",{lab}\n'
                                                        for i, (t, lab) in enumerate(_rows(["pos", "neg"]))))
    unl = tmp_path / "pool.csv"
    unl.write_text("title,body\n" + "".join(f'"{t[:9]}","{t}"\n' for t in TEXTS))
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"error: {unl}: several text-like columns ['body', 'title']; give --unlabeled-text-column"
    code, out = _init(tmp_path, f, "--unlabeled", unl, "--unlabeled-text-column", "body")
    assert code == 0
    cfg, splits = _check_runs(out, ["neg", "pos"])
    assert cfg.data.train.text_a == "Review Text" and cfg.data.unlabeled.text_a == "body"
    assert splits["unlabeled"][1]["text_a"] == TEXTS


def test_a_name_with_a_text_word_does_not_beat_the_column_of_texts(tmp_path, capsys):
    # "Review Date" holds dates: the wordy "Feedback" is the text, as before the names were read for text words
    f = tmp_path / "train.csv"
    f.write_text("Review Date,Feedback,label\n" + "".join(f'2024-01-0{i + 1},"{t}",{lab}\n'
                                                          for i, (t, lab) in enumerate(_rows(["pos", "neg"]))))
    code, out = _init(tmp_path, f)
    assert code == 0 and load_config(out).data.train.text_a == "Feedback"
    two = tmp_path / "two.csv"  # two columns of words, one named for text: the tie goes to the name
    two.write_text("Summary,Review Text,label\n" + "".join(f'"{t}","{t} indeed",{lab}\n' for t, lab in _rows(["pos", "neg"])))
    code, out = _init(tmp_path, two, "--force")
    assert code == 0 and load_config(out).data.train.text_a == "Review Text"


def test_unlabeled_header_named_by_the_flag_is_a_header(tmp_path, capsys):
    # a header of over three words reads like a first text; named by --unlabeled-text-column, it is the header
    u = tmp_path / "survey.csv"
    u.write_text("What did you think of it?\n" + "".join(f'"{t}"\n' for t in TEXTS))
    code, out = _init(tmp_path, _train_csv(tmp_path), "--unlabeled", u, "--unlabeled-text-column", "What did you think of it?")
    assert code == 0, capsys.readouterr().err
    cfg, splits = _check_runs(out, ["bad", "good"])
    assert splits["unlabeled"][1]["text_a"] == TEXTS


def test_dev_label_in_another_case_is_named(tmp_path, capsys):
    f, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["Positive", "Negative"])))
    dev.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["positive", "negative"])))
    code, _ = _init(tmp_path, f, "--dev", dev)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.endswith("(it writes ['Negative', 'Positive']: write each label as the training file does)")


def test_bad_unlabeled_row_gets_one_line(tmp_path, capsys):
    # `pet run` refuses an unlabeled file with an empty text, so init does, in the same words
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    unl = tmp_path / "pool.jsonl"
    unl.write_text("".join(json.dumps({"sentence": t}) + "\n" for t in [*TEXTS, " "]))
    code, out = _init(tmp_path, f, "--unlabeled", str(unl))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "1 bad row(s)" in err and "empty 'sentence'" in err, err
    assert not out.exists()


def test_existing_config_is_not_overwritten(tmp_path, capsys):
    f = tmp_path / "in.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    assert _init(tmp_path, f)[0] == 0
    code, _ = _init(tmp_path, f)
    assert code == 2 and "exists" in capsys.readouterr().err


def test_excel_csv_with_byte_order_mark_and_crlf(tmp_path):
    # Excel's "CSV UTF-8" starts with a BOM: pandas drops it from the first column's name, so the
    # unlabeled reader (`datasets`, which is told the names) must too, or `pet validate` refuses the config
    f = tmp_path / "excel.csv"
    f.write_bytes(("\ufefftext,label\r\n" + "".join(f'"{t}",{lab}\r\n' for t, lab in _rows(["pos", "neg"])))
                  .encode("utf-8"))
    unl = tmp_path / "pool.jsonl"
    unl.write_bytes(("\ufeff" + "".join(json.dumps({"text": t}) + "\n" for t in TEXTS)).encode("utf-8"))
    code, out = _init(tmp_path, f)
    assert code == 0
    cfg, splits = _check_runs(out, ["neg", "pos"])
    assert cfg.data.train.text_a == "text" and len(splits["unlabeled"][1]) == len(TEXTS)
    jl = tmp_path / "bom.jsonl"  # a BOM before JSON Lines, as some Windows editors save them
    jl.write_bytes(("\ufeff" + "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in _rows(["pos", "neg"])))
                   .encode("utf-8"))
    out.unlink()
    code, out = _init(tmp_path, jl, "--unlabeled", unl)
    assert code == 0
    _check_runs(out, ["neg", "pos"])


def test_excel_trailing_comma_gives_the_same_columns_to_every_reader(tmp_path):
    # Excel ends every line with a comma when a column beyond the data was ever touched: an unnamed, empty
    # column. Train (pandas) and unlabeled (`datasets`) must name it alike, or `pet validate` refuses the config
    # init wrote (the train file doubles as unlabeled text when no --unlabeled is given)
    f = tmp_path / "excel.csv"
    f.write_bytes(("\ufeffid,comment,label,\r\n" + "".join(f'{i},"{t}",{lab},\r\n' for i, (t, lab) in
                                                          enumerate(_rows(["pos", "neg"])))).encode("utf-8"))
    code, out = _init(tmp_path, f)
    assert code == 0
    cfg, splits = _check_runs(out, ["neg", "pos"])
    assert splits["unlabeled"][1]["text_a"] == TEXTS


def test_headerless_file_with_short_texts_keeps_its_first_example(tmp_path):
    # "book a flight,book_flight" reads like a header by length; its label recurs below, so it is data
    f = tmp_path / "intents.csv"
    f.write_text("".join(f"{t},{lab}\n" for t, lab in zip(["book a flight", "cancel it", "fly me to rome",
                                                            "cancel my trip", "a ticket to oslo", "drop the booking"],
                                                           ["book_flight", "cancel"] * 3)))
    code, out = _init(tmp_path, f)
    assert code == 0
    cfg = load_config(out)
    assert cfg.data.train.header is False and (cfg.data.train.text_a, cfg.data.train.label) == ("0", "1")
    assert len(read_splits(resolve_models(cfg, install=False).validate())["train"][1]) == 6


def test_a_first_line_that_may_be_a_header_or_an_example_is_asked_about(tmp_path, capsys):
    # a survey export's header ("...?,Verdict") and a first example whose label is in no other row read the
    # same: either guess is silently wrong (a class named "Verdict", or a lost example and class)
    rows = "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"]))
    for first in ("What did you think of the product?,Verdict", '"the film was a total waste of my evening",neutral'):
        f = tmp_path / "survey.csv"
        f.write_text(first + "\n" + rows)
        code, out = _init(tmp_path, f)
        assert code == 2 and "cannot tell whether the first line" in capsys.readouterr().err and not out.exists()
    # the unlabeled file's header equal to the training file's text column name is a header
    f.write_text("opinion,label\n" + rows)
    unl = tmp_path / "more.csv"
    unl.write_text("opinion\n" + "".join(f'"{t}"\n' for t in TEXTS))
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    cfg, splits = _check_runs(out, ["bad", "good"])
    assert code == 0 and cfg.data.unlabeled.header and len(splits["unlabeled"][1]) == len(TEXTS)


def test_letters_of_any_script_are_written_as_they_are(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text("texte,étiquette\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["négatif", "Küche"])))
    code, out = _init(tmp_path, f)
    assert code == 0 and "étiquette" in out.read_text() and "\\u" not in out.read_text()
    _check_runs(out, ["Küche", "négatif"])


def test_a_hand_typed_header_with_spaces_after_commas(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text("text, label\n" + "".join(f'"{t}",{" " * (i % 3 == 0)}{lab}\n' for i, (t, lab) in enumerate(_rows(["good", "bad"]))))
    code, out = _init(tmp_path, f)
    assert code == 0
    cfg, _ = _check_runs(out, ["bad", "good"])
    assert cfg.data.train.label == " label"  # the file's own name, which `pet run` reads it by


def test_given_label_column_is_taken_even_when_every_value_differs(tmp_path, capsys):
    # one example for each of many classes: the guess is refused, but the flag it names must work
    f = tmp_path / "one_each.csv"
    f.write_text("text,label\n" + "".join(f'"{TEXTS[i % 6]} {i}",c{i}\n' for i in range(60)))
    code, _ = _init(tmp_path, f)
    assert code == 2 and "give --label-column label" in capsys.readouterr().err
    code, out = _init(tmp_path, f, "--label-column", "label")
    assert code == 0 and load_config(out).labels == sorted(f"c{i}" for i in range(60))


def test_dev_file_without_labels_is_named(tmp_path, capsys):
    f = tmp_path / "train.csv"
    f.write_text("text,intent\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["a_b", "c_d"])))
    dev = tmp_path / "dev.csv"
    dev.write_text("text\n" + "".join(f'"{t}"\n' for t in TEXTS))
    code, out = _init(tmp_path, f, "--dev", dev)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "a --dev file needs labels: name its column 'intent'" in err, err
    assert not out.exists()


def test_max_length_counts_both_texts_of_a_pair_and_unspaced_scripts(tmp_path):
    # a Chinese review has no spaces to count words by (~2 backbone tokens a character), and a pair's
    # hypothesis is wrapped with its premise: both were missed, so most texts were cut to 64 tokens
    zh = tmp_path / "zh.jsonl"
    zh.write_text("".join(json.dumps({"text": "这部电影非常好看" * 12 + str(i), "label": ["好", "差"][i % 2]},
                                     ensure_ascii=False) + "\n" for i in range(6)), encoding="utf-8")
    code, out = _init(tmp_path, zh)
    assert code == 0 and load_config(out).model.max_length == 224  # 96 characters x 3 bytes x 0.7 + 1.6 + 16
    pair = tmp_path / "nli.jsonl"
    pair.write_text("".join(json.dumps({"premise": " ".join(["word"] * 60), "hypothesis": " ".join(["more"] * 30),
                                        "label": ["yes", "no"][i % 2]}) + "\n" for i in range(6)))
    out.unlink()
    code, out = _init(tmp_path, pair)
    assert code == 0 and load_config(out).model.max_length == 160  # 90 words x 1.6 + 16


def test_name_is_checked_and_quoted(tmp_path, capsys):
    f = tmp_path / "in.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    code, out = _init(tmp_path, f, "--name", "news: v2")  # was written unquoted: YAML `pet validate` could not parse
    err = capsys.readouterr().err.strip()
    assert code == 2 and "use letters, digits" in err and "'news-v2'" in err and not out.exists(), err
    code, out = _init(tmp_path, f, "--name", "yes")  # YAML 1.1 reads a bare yes as True
    assert code == 0
    cfg, _ = _check_runs(out, ["bad", "good"])
    assert cfg.name == "yes" and cfg.tracking.registered_model == "yes-classifier"


def test_semicolon_csv_from_excel_is_read_split_by_semicolons(tmp_path):
    # Excel's CSV in a German or French locale separates by ';' and leaves commas in texts unquoted:
    # split by ',' the rows disagree with the header; init writes `read_options: {sep: ";"}`, which
    # every reader of the run (pandas, datasets, the field-count check) follows
    f = tmp_path / "bewertungen.csv"
    f.write_text("text;label\n" + "".join(f"{t}, really;{lab}\n" for t, lab in _rows(["gut", "schlecht"])))
    unl = tmp_path / "pool.csv"
    unl.write_text("text;source\n" + "".join(f"{t}, more;web\n" for t in TEXTS))
    code, out = _init(tmp_path, f, "--unlabeled", unl, "--dev", f)
    assert code == 0
    cfg, splits = _check_runs(out, ["gut", "schlecht"])
    assert cfg.data.train.read_options == {"sep": ";"} and cfg.data.unlabeled.read_options == {"sep": ";"}
    assert splits["train"][1][0].text_a == TEXTS[0] + ", really" and len(splits["dev"][1]) == len(TEXTS)
    assert [t for t in splits["unlabeled"][1]["text_a"]] == [t + ", more" for t in TEXTS]


def test_one_column_of_texts_without_a_header(tmp_path, capsys):
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    # a first text with sentence punctuation is data, not a column name: no text is lost
    unl = tmp_path / "pool.csv"
    unl.write_text("Great fun!\n" + "".join(f"{t}\n" for t in TEXTS))
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    assert code == 0
    cfg, splits = _check_runs(out, ["bad", "good"])
    assert cfg.data.unlabeled.header is False and len(splits["unlabeled"][1]) == len(TEXTS) + 1
    assert "note:" not in capsys.readouterr().err
    # "Loved it" could be a column's name or a text: read as a name, and the user is told
    unl.write_text("Loved it\n" + "".join(f"{t}\n" for t in TEXTS))
    out.unlink()
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    err = capsys.readouterr().err
    assert code == 0 and "note:" in err and "first line 'Loved it' is read as the column's name" in err, err
    # the name of the training file's text column (not one init knows, e.g. French `texte`) is a header
    g = tmp_path / "avis.csv"
    g.write_text("texte,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    unl.write_text("texte\n" + "".join(f"{t}\n" for t in TEXTS))
    out.unlink()
    code, out = _init(tmp_path, g, "--unlabeled", unl, "--text-column", "texte")
    assert code == 0 and "note:" not in capsys.readouterr().err
    unl.write_text("Texte\n" + "".join(f"{t}\n" for t in TEXTS))  # the same name in another case
    out.unlink()
    code, out = _init(tmp_path, g, "--unlabeled", unl, "--text-column", "texte")
    assert code == 0 and "note:" not in capsys.readouterr().err


@pytest.mark.parametrize("pool, texts", [
    # a headerless file of texts, one with a ';': not a ';' table (the other lines do not split), no text lost
    ("Great cast; weak script\n" + "".join(f"{t}\n" for t in TEXTS), ["Great cast; weak script", *TEXTS]),
    # a ';' table whose header has a comma in a name: ';' splits every line into more fields than ','
    ("id;text, raw;src\n" + "".join(f"{i};{t}, yes;web\n" for i, t in enumerate(TEXTS)), [f"{t}, yes" for t in TEXTS]),
])
def test_separator_is_taken_only_where_every_line_splits(tmp_path, pool, texts):
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    unl = tmp_path / "pool.csv"
    unl.write_text(pool)
    code, out = _init(tmp_path, f, "--unlabeled", unl, "--text-column", "text")
    assert code == 0
    _, splits = _check_runs(out, ["bad", "good"])
    assert list(splits["unlabeled"][1]["text_a"]) == texts


def test_semicolon_file_with_an_unquoted_semicolon_names_the_line(tmp_path, capsys):
    f = tmp_path / "train.csv"
    rows = [f"{t}, really;{lab}" for t, lab in _rows(["gut", "schlecht"])]
    rows[2] = "what; a film;gut"
    f.write_text("text;label\n" + "\n".join(rows) + "\n")
    code, out = _init(tmp_path, f)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "line 4 has 3 fields" in err and "quote texts that contain ';'" in err, err


def test_no_header_note_for_json_lines(tmp_path, capsys):
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    unl = tmp_path / "pool.jsonl"
    unl.write_text("".join(json.dumps({"review_body": t}) + "\n" for t in TEXTS))
    code, _ = _init(tmp_path, f, "--unlabeled", unl)
    assert code == 0 and "note:" not in capsys.readouterr().err


def test_a_new_unlabeled_file_gets_its_own_separator(tmp_path):
    # relabel and the inbox hand the config a new file: the configured file's ';' must not be kept for it
    f = tmp_path / "train.csv"
    f.write_text("text;label\n" + "".join(f"{t}, really;{lab}\n" for t, lab in _rows(["gut", "schlecht"])))
    code, out = _init(tmp_path, f)
    assert code == 0
    cfg = load_config(out)
    assert cfg.data.unlabeled.read_options == {"sep": ";"}
    new_tsv, new_csv = tmp_path / "new.tsv", tmp_path / "new.csv"
    new_tsv.write_text("text\tsource\n" + "".join(f"{t}, yes\tweb\n" for t in TEXTS))
    new_csv.write_text("text,source\n" + "".join(f'"{t}, yes",web\n' for t in TEXTS))
    for new in (new_tsv, new_csv):
        moved = cfg.with_unlabeled(str(new))
        assert moved.data.unlabeled.read_options == {}
        assert list(read_splits(resolve_models(moved, install=False).validate())["unlabeled"][1]["text_a"]) == \
            [f"{t}, yes" for t in TEXTS]
    # a file the sniff cannot decide (one line) keeps the configured separator
    one = tmp_path / "one.csv"
    one.write_text("text;source\n")
    assert cfg.with_unlabeled(str(one)).data.unlabeled.read_options == {"sep": ";"}


def test_a_headerless_pool_keeps_its_texts_whole_in_relabel(tmp_path):
    # headerless: the file cannot tell a ';' table from texts that hold a ';', so the config's layout decides
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    unl = tmp_path / "pool.csv"
    unl.write_text("Great fun!\n" + "".join(f"{t}\n" for t in TEXTS))
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    assert code == 0
    new = tmp_path / "new.csv"
    new.write_text("Not bad; not great.\nGood; fun.\n")
    moved = load_config(out).with_unlabeled(str(new))
    assert moved.data.unlabeled.header is False and moved.data.unlabeled.read_options == {}
    assert list(read_splits(resolve_models(moved, install=False).validate())["unlabeled"][1]["text_a"]) == \
        ["Not bad; not great.", "Good; fun."]


def test_blank_lines_of_the_unlabeled_file_are_named_not_dropped_silently(tmp_path, capsys):
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    unl = tmp_path / "pool.csv"
    unl.write_text("text\n" + "\n".join(TEXTS[:3]) + "\n\n   \n" + "\n".join(TEXTS[3:]) + "\n")
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    err = capsys.readouterr().err
    assert code == 0 and f"{unl}: 2 empty line(s) skipped, no text there (line 5, 6)" in err, err
    _, splits = _check_runs(out, ["bad", "good"])
    assert len(splits["unlabeled"][1]) == len(TEXTS)  # what `pet run` reads: the texts, no empty rows


def test_excel_empty_rows_are_skipped_as_blank_lines_are(tmp_path, capsys):
    # Excel writes an empty row at the end of a sheet as ',' (separators alone): refused as an empty text before
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])) + ",\n,\n")
    unl = tmp_path / "pool.csv"
    unl.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TEXTS)) + ",\n")
    code, out = _init(tmp_path, f, "--unlabeled", unl)
    err = capsys.readouterr().err
    assert code == 0 and f"{unl}: 1 empty line(s) skipped, no text there (line 8)" in err, err
    _, splits = _check_runs(out, ["bad", "good"])
    assert len(splits["unlabeled"][1]) == len(TEXTS)


def test_questions_are_noted_with_what_the_dev_set_changes(tmp_path, capsys):
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"Why is it {t} ?",{lab}\n' for t, lab in _rows(["desc", "num"])))
    code, _ = _init(tmp_path, f)
    err = capsys.readouterr().err
    assert code == 0 and "the texts are questions" in err and "give --dev" in err, err
    code, _ = _init(tmp_path, f, "--dev", f, "--force")
    err = capsys.readouterr().err
    assert code == 0 and "one is trained beside the zero-shot choice" in err and "give --dev" not in err, err
    g = tmp_path / "plain.csv"  # statements: no note
    g.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    code, _ = _init(tmp_path, g, "--force")
    assert code == 0 and "questions" not in capsys.readouterr().err



def test_much_more_data_than_few_shot_is_noted_with_what_a_run_does_with_it(tmp_path, capsys, monkeypatch):
    """IMDB's 25,000 labeled and 50,000 unlabeled reviews (a new-user trial) were taken without a word."""
    from flows import init_cmd

    f = _train_csv(tmp_path)
    u = tmp_path / "unlabeled.csv"
    u.write_text("text\n" + "".join(f'"{t}"\n' for t in TEXTS))
    code, _ = _init(tmp_path, f, "--unlabeled", u)
    assert code == 0 and "labeled rows" not in capsys.readouterr().err  # few: nothing said
    monkeypatch.setattr(init_cmd, "MANY_LABELED", len(TEXTS) - 1)
    monkeypatch.setattr(init_cmd, "MANY_UNLABELED", len(TEXTS) - 1)
    code, out = _init(tmp_path, f, "--unlabeled", u, "--force")
    err = capsys.readouterr().err
    assert code == 0 and f"{len(TEXTS)} labeled rows: pet is built and measured for a few per label" in err, err
    assert f"{len(TEXTS)} unlabeled texts: every pattern model labels each one, about 0 minutes" in err
    assert f"'limit: {init_cmd.UNLABELED_SAMPLE}, seed: 0' in its data line takes a sample" in err


def _train_csv(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in _rows(["good", "bad"])))
    return f


def test_backbone_and_student_by_zoo_name_or_folder(tmp_path, tiny_causal_dir, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("PET_MODELS_DIR", str(tmp_path / "empty-zoo"))  # nothing installed: said, not refused
    f = _train_csv(tmp_path)
    code, out = _init(tmp_path, f, "--backbone", "gemma-3-270m", "--student", tiny_model_dir)
    assert code == 0
    assert "--backbone gemma-3-270m: not installed yet (268M parameters); `pet run` installs it" in capsys.readouterr().err
    cfg = load_config(out)
    assert cfg.model.path == "gemma-3-270m"
    # relative to the config's folder, as the data paths are, and never bare (a bare name reads as a zoo model)
    assert cfg.distill.model_path.startswith("../") and Path(cfg.resolve(cfg.distill.model_path)) == tiny_model_dir.resolve()
    code, out = _init(tmp_path, f, "--backbone", tiny_causal_dir, "--force")
    cfg = resolve_models(load_config(out), install=False).validate()  # what `pet validate` does first
    assert code == 0 and cfg.model.path.startswith("../") and Path(cfg.resolve(cfg.model.path)) == tiny_causal_dir.resolve()
    assert cfg.distill.model_path == "all-minilm-l6-v2"


def test_an_installed_zoo_model_gets_no_note_and_a_folder_beside_the_config_is_dot_slash(tmp_path, tiny_model_dir,
                                                                                          capsys, monkeypatch):
    import shutil

    import flows.init_models as init_models
    from pet_zoo.install import ModelStatus
    monkeypatch.setattr(init_models, "list_models", lambda: [ModelStatus("gemma-3-270m", "causal-lm", "268M", True, "x", "")])
    f = _train_csv(tmp_path)
    code, out = _init(tmp_path, f, "--backbone", "gemma-3-270m")
    assert code == 0 and "note: --backbone" not in capsys.readouterr().err
    shutil.copytree(tiny_model_dir, out.parent / "my-student")
    monkeypatch.chdir(out.parent)
    code, out = _init(tmp_path, f, "--student", "my-student", "--force")
    assert code == 0 and load_config(out).distill.model_path == "./my-student"


@pytest.mark.parametrize("flag,value,message", [
    ("--backbone", "all-minilm-l6-v2", "--backbone 'all-minilm-l6-v2' is an encoder (22.7M); the PET backbone is a causal"),
    ("--student", "gemma-3-270m", "--student 'gemma-3-270m' is a causal-lm (268M); the student is a small encoder"),
    ("--backbone", "gema-3-270m", "no such model folder and not a known model; did you mean 'gemma-3-270m'?"),
    ("--student", "nowhere/at-all", "--student 'nowhere/at-all': no such model folder"),
    ("--backbone", "~no-such-user-here/x", "--backbone '~no-such-user-here/x': "),
    ("--backbone", " ", "--backbone is empty"),
])
def test_a_backbone_or_student_of_the_wrong_kind_gets_one_line(tmp_path, capsys, flag, value, message):
    code, out = _init(tmp_path, _train_csv(tmp_path), flag, value)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize("flag,config,message", [
    ("--backbone", {"model_type": "bert", "architectures": ["BertModel"]}, "BertModel has no language-model head"),
    ("--backbone", None, "no config.json in the folder"),
    ("--student", None, "no config.json in the folder"),
    ("--student", [1, 2], "its config.json is no transformers config"),
    ("--backbone", {"model_type": "no-such-architecture"}, "no-such-architecture"),  # transformers' paragraph, one line
    ("--student", {"model_type": "t5", "is_encoder_decoder": True}, "is an encoder-decoder"),
])
def test_a_folder_that_cannot_serve_its_role_gets_one_line(tmp_path, capsys, flag, config, message):
    folder = tmp_path / "model"
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    code, out = _init(tmp_path, _train_csv(tmp_path), flag, folder)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_a_zoo_name_that_is_also_a_folder_beside_the_config_is_refused(tmp_path, capsys):
    # `pet run` would take the folder, not the zoo model init named
    (tmp_path / "cfg" / "gemma-3-270m").mkdir(parents=True)
    code, out = _init(tmp_path, _train_csv(tmp_path), "--backbone", "gemma-3-270m")
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "write ./gemma-3-270m for the folder" in err, err


def test_the_models_are_checked_before_any_data_is_read(tmp_path, capsys):
    code, _ = _init(tmp_path, tmp_path / "missing.csv", "--backbone", "gema-3-270m")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "did you mean 'gemma-3-270m'" in err and "missing.csv" not in err, err


def test_repeated_rows_and_a_text_with_two_labels_are_noted(tmp_path, capsys):
    f = tmp_path / "train.csv"
    rows = _rows(["pos", "neg"]) + [(TEXTS[0], "pos"), (TEXTS[0], "pos"), (TEXTS[1], "pos")]
    f.write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows))
    code, _ = _init(tmp_path, f)
    err = capsys.readouterr().err
    assert code == 0
    assert f"note: {f}: 2 row(s) repeat an earlier row" in err
    assert f"note: {f}: 1 text(s) carry two or more labels (e.g. {TEXTS[1]!r}: ['neg', 'pos'])" in err


def test_a_small_unlabeled_pool_is_noted(tmp_path, capsys, monkeypatch):
    from flows import init_cmd

    monkeypatch.setattr(init_cmd, "FEW_UNLABELED", 200)
    u = tmp_path / "pool.csv"
    u.write_text("text\n" + "".join(f'"{t}"\n' for t in TEXTS))
    code, _ = _init(tmp_path, _train_csv(tmp_path), "--unlabeled", u)
    assert code == 0 and f"note: {u}: {len(TEXTS)} texts unlabeled: the student learns from" in capsys.readouterr().err
