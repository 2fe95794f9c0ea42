"""``pet predict`` with a registered classifier (the registry: ``predict_registry``)."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from predict_registry import LABELS, PAIR_SET, PAIRS, TEXTS, _check, registry  # noqa: F401 (a fixture)


def pet(*argv) -> int:
    from flows.cli import main

    return main([str(a) for a in argv])


def test_predict_csv_with_the_champion_and_jsonl_with_a_version(registry, tmp_path, capsys):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": [f"0{i}" for i in range(len(TEXTS))], "text": TEXTS}).to_csv(src, index=False)
    assert pet("predict", registry["config"], src, "--output", tmp_path / "out.csv", "--batch-size", 2, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == "2" and summary["alias"] == "champion" and summary["rows"] == len(TEXTS)
    _check(tmp_path / "out.csv", registry["expected"]["2"], ["id", "text"])
    assert list(pd.read_csv(tmp_path / "out.csv", dtype=str)["id"])[:2] == ["00", "01"]  # kept verbatim

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "n": i}) for i, t in enumerate(TEXTS)) + "\n")
    assert pet("predict", registry["config"], jsonl, "-o", tmp_path / "out.jsonl", "--version", 1, "--json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1"
    _check(tmp_path / "out.jsonl", registry["expected"]["1"], ["text", "n"])
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("labels, kind", [(["0", "1"], "int64"), (["1", "-1"], "int64"), (["01", "1"], "object"),
                                          (["pos", "neg"], "object")])
def test_integer_labels_come_back_as_integers(tmp_path, labels, kind):
    from flows.predict import TextColumns, predict_file

    class Classifier:  # predict_file needs labels and predict_texts
        def __init__(self):
            self.labels = labels

        def predict_texts(self, texts_a, texts_b, batch_size):
            return np.array([[0.0, 1.0] if "bad" in t else [1.0, 0.0] for t in texts_a])

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    predict_file(Classifier(), src, "jsonl", TextColumns("text"), tmp_path / "out.jsonl", "jsonl", 2)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    want = [int(labels[1 if "bad" in t else 0]) if kind == "int64" else labels[1 if "bad" in t else 0] for t in TEXTS]
    assert [r["label"] for r in rows] == want  # 0 and 1 as JSON numbers; "01" would not survive as one


def test_semicolon_csv_and_a_headerless_config(registry, tmp_path, capsys):
    # Excel's ';' CSV (commas left in texts) is read split by ';', as pet init reads it
    src = tmp_path / "semi.csv"
    src.write_text("id;text\n" + "".join(f"{i};{t}\n" for i, t in enumerate(TEXTS)))
    assert pet("predict", registry["config"], src, "-o", tmp_path / "out.csv", "--json") == 0
    capsys.readouterr()
    _check(tmp_path / "out.csv", registry["expected"]["2"], ["id", "text"])
    # a config whose pool had no header (text column "0") reads the input without one too
    plain = tmp_path / "plain.csv"
    plain.write_text("".join(f"{t}\n" for t in TEXTS))
    headerless = ["--set", "data.unlabeled.text_a='0'", "--set", "data.unlabeled.header=false"]
    assert pet("predict", registry["config"], plain, "-o", tmp_path / "out2.csv", *headerless) == 0
    df = pd.read_csv(tmp_path / "out2.csv", keep_default_na=False)
    assert list(df["0"]) == TEXTS and np.allclose(df[["prob_pos", "prob_neg"]].to_numpy(), registry["expected"]["2"], atol=1e-4)
    # one column named as texts are is the text (the training file's "sentence"); a first text is no name
    capsys.readouterr()
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(f"{t}\n" for t in TEXTS))
    assert pet("predict", registry["config"], bare, "-o", tmp_path / "out8.csv") == 2
    assert "missing text column(s)" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    other.write_text("sentence\n" + "".join(f"{t}\n" for t in TEXTS))
    assert pet("predict", registry["config"], other, "-o", tmp_path / "out7.csv") == 0
    df = pd.read_csv(tmp_path / "out7.csv", keep_default_na=False)
    assert list(df["sentence"]) == TEXTS and np.allclose(df[["prob_pos", "prob_neg"]].to_numpy(), registry["expected"]["2"], atol=1e-4)
    # headerless texts that each hold a ';' are texts, not a ';' table: the config's layout decides
    semi_texts = tmp_path / "semi_texts.csv"
    semi_texts.write_text("".join(f"{t}; sure\n" for t in TEXTS))
    assert pet("predict", registry["config"], semi_texts, "-o", tmp_path / "out3.csv", *headerless) == 0
    assert list(pd.read_csv(tmp_path / "out3.csv", keep_default_na=False)["0"]) == [f"{t}; sure" for t in TEXTS]
    # a file with a header given to a headerless config: its header line would be labeled as a text
    capsys.readouterr()
    named = tmp_path / "named.csv"
    named.write_text("text\n" + "".join(f"{t}\n" for t in TEXTS))
    assert pet("predict", registry["config"], named, "-o", tmp_path / "out4.csv", *headerless) == 2
    assert "looks like a header" in capsys.readouterr().err and not (tmp_path / "out4.csv").exists()
    # pet init's config for LM-BFF's headerless `label,sentence` reads the text from column "1": a file of
    # texts alone was refused ("missing text column(s) ['1']; the file has ['0']")
    lmbff = ["--set", "data.unlabeled.text_a='1'", "--set", "data.unlabeled.header=false"]
    assert pet("predict", registry["config"], plain, "-o", tmp_path / "out5.csv", *lmbff) == 0
    df = pd.read_csv(tmp_path / "out5.csv", keep_default_na=False)
    assert list(df["0"]) == TEXTS and np.allclose(df[["prob_pos", "prob_neg"]].to_numpy(), registry["expected"]["2"], atol=1e-4)
    # pet init's config for LM-BFF's headerless `label,sentence` train beside a named unlabeled pool: a file laid
    # out as train (no header line) is read as train is; one with a header line still needs the pool's names
    mixed = ["--set", "data.train.text_a='1'", "--set", "data.train.header=false"]
    capsys.readouterr()
    as_train = tmp_path / "as_train.csv"
    as_train.write_text("".join(f"{i % 2},{t}\n" for i, t in enumerate(TEXTS)))
    assert pet("predict", registry["config"], as_train, "-o", tmp_path / "out9.csv", *mixed) == 0
    df = pd.read_csv(tmp_path / "out9.csv", keep_default_na=False)
    assert list(df["1"]) == TEXTS and np.allclose(df[["prob_pos", "prob_neg"]].to_numpy(), registry["expected"]["2"], atol=1e-4)
    assert pet("predict", registry["config"], bare, "-o", tmp_path / "out10.csv", *mixed) == 0  # texts alone, too
    assert list(pd.read_csv(tmp_path / "out10.csv", keep_default_na=False)["0"]) == TEXTS
    capsys.readouterr()
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("label,review\n" + "".join(f"0,{t}\n" for t in TEXTS))
    assert pet("predict", registry["config"], wrong, "-o", tmp_path / "out11.csv", *mixed) == 2
    assert "missing text column(s) ['text']" in capsys.readouterr().err and not (tmp_path / "out11.csv").exists()
    # blank lines are skipped by the reader, so the output has no row for them: the summary names them
    capsys.readouterr()
    gappy = tmp_path / "gappy.csv"
    gappy.write_text(f"{TEXTS[0]}\n   \n{TEXTS[1]}\n\n" + "".join(f"{t}\n" for t in TEXTS[2:]))
    assert pet("predict", registry["config"], gappy, "-o", tmp_path / "out6.csv", *headerless) == 0
    assert "; 2 empty line(s) skipped, not in the output (line 2, 4)" in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "out6.csv", keep_default_na=False)["0"]) == TEXTS


def test_the_summary_counts_the_texts_cut_and_rows_of_empty_fields_are_skipped(registry, tmp_path, capsys):
    """A text longer than the model's max_length (32 here) is cut by the tokenizer, which the labels cannot show:
    the summary says how many were. A row of separators alone (Excel's empty row) was refused as an empty text:
    it is skipped as a blank line is."""
    long = "the movie was great and the plot was good " * 5  # over 40 tokens
    src = tmp_path / "in.csv"
    src.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(TEXTS)) + f"9,{long}\n,\n")
    assert pet("predict", registry["config"], src, "-o", tmp_path / "out.csv") == 0
    out = capsys.readouterr().out.strip()
    assert out.endswith("-> " + str(tmp_path / "out.csv") + "; 1 empty line(s) skipped, not in the output (line 8); "
                        "1 of 6 texts was longer than max_length 32 tokens and was cut"), out
    assert list(pd.read_csv(tmp_path / "out.csv", keep_default_na=False)["text"]) == TEXTS + [long]
    assert pet("predict", registry["config"], src, "-o", tmp_path / "out.jsonl", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["texts_cut"], summary["max_length"], summary["blank_lines"]) == (1, 32, [8])
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "short.csv", index=False)
    assert pet("predict", registry["config"], tmp_path / "short.csv", "-o", tmp_path / "out2.csv") == 0
    assert "max_length" not in capsys.readouterr().out  # said only when a text was cut


def test_text_pairs_and_the_logged_signature(registry, tmp_path, capsys):
    import mlflow

    sets = [x for k, v in PAIR_SET.items() for x in ("--set", f"{k}={v}")]
    pd.DataFrame({"text": TEXTS, "pair": PAIRS}).to_csv(tmp_path / "in.csv", index=False)
    assert pet("predict", registry["config"], tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--json", *sets) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "predict-pair"
    _check(tmp_path / "out.csv", registry["expected"]["pair"], ["text", "pair"])

    single = mlflow.models.get_model_info("models:/predict-clf/2").signature  # logged in a worker thread
    paired = mlflow.models.get_model_info("models:/predict-pair/1").signature
    assert single.inputs.input_names() == ["text"] and paired.inputs.input_names() == ["text", "text_pair"]
    assert single.outputs.input_names() == ["label", "prob_pos", "prob_neg"]  # as `pet predict` writes them
    # what `mlflow models serve` runs: the pyfunc model, here on pairs (no ONNX export: torch)
    served = mlflow.pyfunc.load_model("models:/predict-pair@champion").predict(pd.DataFrame({"text": TEXTS, "text_pair": PAIRS}))
    assert list(served["label"]) == [LABELS[i] for i in registry["expected"]["pair"].argmax(1)]
    assert np.allclose(served[["prob_pos", "prob_neg"]].to_numpy(), registry["expected"]["pair"], atol=1e-4)


def test_a_pair_input_without_its_second_text_names_text_b(registry, tmp_path, capsys):
    sets = [x for k, v in PAIR_SET.items() for x in ("--set", f"{k}={v}")]
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "in.csv", index=False)
    assert pet("predict", registry["config"], tmp_path / "in.csv", "-o", tmp_path / "out.csv", *sets) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing text column(s) ['pair']" in err[0] and "--set data.unlabeled.text_b=COLUMN" in err[0]
    assert "text_a=" not in err[0] and not (tmp_path / "out.csv").exists()


def test_an_input_laid_out_as_the_training_file(registry, tmp_path, capsys):
    # the pool's column is `body`, train's `text`: a file named as train is labeled as well
    sets = ["--set", "data.unlabeled.text_a=body"]
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "in.csv", index=False)
    assert pet("predict", registry["config"], tmp_path / "in.csv", "-o", tmp_path / "out.csv", *sets) == 0
    _check(tmp_path / "out.csv", registry["expected"]["2"], ["text"])
    pd.DataFrame({"other": TEXTS}).to_csv(tmp_path / "in2.csv", index=False)
    assert pet("predict", registry["config"], tmp_path / "in2.csv", "-o", tmp_path / "out2.csv", *sets) == 2
    assert "missing text column(s) ['body'] (or the config's other files' ['text'])" in capsys.readouterr().err


def test_predict_streams_parquet_in_chunks(registry, tmp_path, monkeypatch, capsys):
    import flows.predict

    monkeypatch.setattr(flows.predict, "CHUNK_ROWS", 2)  # 5 rows: three chunks, three row groups
    pd.DataFrame({"text": TEXTS}).to_parquet(tmp_path / "in.parquet")
    assert pet("predict", registry["config"], tmp_path / "in.parquet", "-o", tmp_path / "out.parquet") == 0
    assert capsys.readouterr().out.startswith("predict done: 5 rows labeled by models:/predict-clf/2 ('champion') on ")
    df = pd.read_parquet(tmp_path / "out.parquet")
    assert list(df["text"]) == TEXTS
    assert np.allclose(df[["prob_pos", "prob_neg"]].to_numpy(), registry["expected"]["2"], atol=1e-4)


def test_the_configs_store_is_used_not_the_process_wide_one(registry, tmp_path, capsys):
    import mlflow

    # MLflow resolves models:/ URIs against the process-wide registry; `pet predict` must not
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "in.csv", index=False)
        args = ["--model-uri", "models:/predict-clf@champion"]
        assert pet("predict", registry["config"], tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--json", *args) == 0
        assert json.loads(capsys.readouterr().out)["version"] == "2"
        _check(tmp_path / "out.csv", registry["expected"]["2"], ["text"])
    finally:
        mlflow.set_tracking_uri(registry["uri"])


def test_a_bad_row_after_the_first_chunk_leaves_no_output(registry, tmp_path, monkeypatch, capsys):
    import flows.predict

    monkeypatch.setattr(flows.predict, "CHUNK_ROWS", 2)
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "great"}\n{"text": "bad"}\n{"text": "fine"}\n{"text": oops}\n')
    assert pet("predict", registry["config"], src, "-o", tmp_path / "out.csv") == 2
    assert "line 4" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [src]  # neither the output nor its temporary file


def test_jsonl_records_with_different_keys(registry, tmp_path, monkeypatch, capsys):
    import flows.predict

    monkeypatch.setattr(flows.predict, "CHUNK_ROWS", 2)
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "great", "n": 1}\n{"text": "bad", "n": 2}\n{"text": "fine"}\n{"n": 4, "text": "ok"}\n')
    assert pet("predict", registry["config"], src, "-o", tmp_path / "out.csv") == 0
    df = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(df["n"]) == ["1", "2", "", "4"] and list(df["text"]) == ["great", "bad", "fine", "ok"]
    src.write_text('{"text": "great"}\n{"text": "bad"}\n{"text": "fine", "extra": 1}\n')
    assert pet("predict", registry["config"], src, "-o", tmp_path / "new.csv") == 2
    assert "after row 2 bring new key(s) ['extra']" in capsys.readouterr().err
    assert pet("predict", registry["config"], src, "-o", tmp_path / "new.jsonl") == 0
    assert pd.read_json(tmp_path / "new.jsonl", lines=True)["extra"].tolist()[2] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--alias", "nosuch"], r"model 'predict-clf' has no alias 'nosuch'; its aliases: ['champion']"),
        (["--version", "7"], "model 'predict-clf' has no version 7; its versions: [1, 2]"),
        (["--set", "tracking.registered_model=other"], "no registered model 'other'"),
        (["--set", "work_dir=elsewhere"], "no MLflow store at sqlite:///"),
    ],
)
def test_model_errors(registry, tmp_path, capsys, args, message):
    src = tmp_path / "in.csv"
    src.write_text("text\ngreat\n")
    assert pet("predict", registry["config"], src, "-o", tmp_path / "out.csv", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out.csv").exists()
    assert not (registry["root"] / "elsewhere").exists()  # looking does not create a store


@pytest.mark.parametrize(
    "content, output, message",
    [
        ("sentence,id\ngreat,1\n", "out.csv", "missing text column(s) ['text']; the file has ['sentence', 'id']: rename "
         "them, or name yours with --set data.unlabeled.text_a=COLUMN"),
        (None, "out.csv", "input file not found"),
        ("text\ngreat\n", "out.xlsx", "the output suffix must be one of"),
        ("text,label\ngreat,pos\n", "out.csv", "already has column(s) ['label']"),
    ],
)
def test_input_errors(registry, tmp_path, capsys, content, output, message):
    src = tmp_path / "in.csv"
    if content is not None:
        src.write_text(content)
    assert pet("predict", registry["config"], src, "-o", tmp_path / output) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / output).exists()


def test_an_input_without_a_known_suffix_is_told_to_rename_it(registry, tmp_path, capsys):
    # not "set `format`": that is a config key, and predict reads the input's suffix only
    (tmp_path / "plain.txt").write_text("text\ngreat\n")
    assert pet("predict", registry["config"], tmp_path / "plain.txt", "-o", tmp_path / "out.csv") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rename it with one of the suffixes ['.csv', '.tsv', '.jsonl', '.parquet', '.pq']" in err[0], err


@pytest.mark.parametrize("name, content, message", [("in.csv", "", "the file is empty"), ("in.jsonl", "", "the file is empty"),
                                                    ("in.jsonl", "\n\n", "no records")])
def test_an_empty_input_is_named_as_empty(registry, tmp_path, capsys, name, content, message):
    """Not "missing text column(s) ['text']; the file has []" (an empty JSON Lines file said so): one line saying
    the file is empty, no output, no model loaded. A CSV with its header line and no rows is not empty: 0 rows."""
    (tmp_path / name).write_text(content)
    assert pet("predict", registry["config"], tmp_path / name, "-o", tmp_path / "out.csv") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{name}: {message}" in err[0] and "no rows to label" in err[0], err
    assert not (tmp_path / "out.csv").exists()
    (tmp_path / "header.csv").write_text("text\n")
    assert pet("predict", registry["config"], tmp_path / "header.csv", "-o", tmp_path / "out.csv") == 0
    assert "predict done: 0 rows" in capsys.readouterr().out


def test_sigterm_stops_predict_as_ctrl_c_does_leaving_no_file(registry, tmp_path, capsys, monkeypatch):
    """`timeout` and service managers send SIGTERM: the run stops with one line and exit 130, and the output's
    temporary file is removed (the default action would end the process with it left behind)."""
    import os
    import signal

    import flows.predict

    real = flows.predict.predict_file

    def terminated_midway(clf, path, in_fmt, columns, out, *args, **kwargs):
        from pet_io import table_stream

        with table_stream.atomic_writer(out, "csv") as writer:
            writer.write(pd.DataFrame({"text": TEXTS[:1]}))  # a first chunk written: the temporary file exists
            assert [p for p in out.parent.iterdir() if p.name.startswith(".out.csv")]
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread before the next bytecode
            return real(clf, path, in_fmt, columns, out, *args, **kwargs)

    monkeypatch.setattr(flows.predict, "predict_file", terminated_midway)
    before = signal.getsignal(signal.SIGTERM)
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "in.csv", index=False)
    assert pet("predict", registry["config"], tmp_path / "in.csv", "-o", tmp_path / "out.csv") == 130
    assert capsys.readouterr().err.strip() == "interrupted; no output written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no output, no temporary file
    assert signal.getsignal(signal.SIGTERM) == before  # the process's own handler is back


def test_a_version_whose_artifacts_are_gone_names_where_they_were_looked_for(registry, tmp_path, capsys):
    """A store moved or copied keeps its artifacts' old folder: the one-line error says where it looked."""
    import mlflow

    from pet_config.loading import load_config
    from predict_registry import _register

    config = load_config(registry["config"], {"tracking.registered_model": "predict-gone"})
    assert _register(config, registry["root"] / "clf2", "k-gone") == "1"
    location = mlflow.MlflowClient(config.tracking_uri()).get_model_version_download_uri("predict-gone", "1")
    shutil.rmtree(location.removeprefix("file://"))
    capsys.readouterr()  # MLflow's own prints of the registration
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "in.csv", index=False)
    assert pet("predict", registry["config"], tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--version", "1",
               "--set", "tracking.registered_model=predict-gone") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot load models:/predict-gone/1 from ") and location in err[0], err
    assert not (tmp_path / "out.csv").exists()
