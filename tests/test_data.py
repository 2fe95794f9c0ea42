import json

import pandas as pd
import pytest

from pet_io.example_files import read_examples, save_examples
from pet_io.labeled import load_examples
from pet_io.sources import DataSpec, DataValidationError
from prompt_models.examples import InputExample, example_digest, examples_digest

ROWS = [{"text": "a good film", "label": "pos"}, {"text": "a bad film", "label": "neg"}]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_every_format_loads_the_same_examples(tmp_path, fmt):
    df = pd.DataFrame(ROWS)
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif fmt == "json":
        path.write_text(json.dumps({str(i): r for i, r in enumerate(ROWS)}))
    else:
        df.to_parquet(path)
    exs = load_examples(DataSpec(str(path), text_a="text"), ["pos", "neg"])
    assert [(e.text_a, e.label) for e in exs] == [("a good film", "pos"), ("a bad film", "neg")]


def test_headerless_csv_with_numbered_columns(tmp_path):
    path = tmp_path / "mr.csv"
    path.write_text('0,"it\'s bad , really"\n1,fine film\n')
    exs = load_examples(DataSpec(str(path), text_a="1", label="0", header=False), ["0", "1"])
    assert exs[0].text_a == "it's bad , really" and exs[0].label == "0"


def test_missing_column_names_the_columns_present(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['sentence'\].*'text', 'label'"):
        load_examples(DataSpec(str(path), text_a="sentence"), ["pos", "neg"])


def test_unknown_label_and_empty_text_are_reported_with_rows(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = ROWS + [{"text": "   ", "label": "pos"}, {"text": "meh", "label": "neutral"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataValidationError) as err:
        load_examples(DataSpec(str(path), text_a="text"), ["pos", "neg"])
    msg = str(err.value)
    # JSON Lines: the records of ROWS fill lines 1-2, so the bad ones sit on lines 3 and 4
    assert "2 bad row(s)" in msg and "line 3: empty 'text'" in msg and "line 4: unknown label 'neutral'" in msg


def test_the_known_labels_are_said_once_however_many_rows_miss_them(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,pos\nb,neutral\nc,mixed\nd,neutral\n")
    with pytest.raises(DataValidationError) as err:
        load_examples(DataSpec(str(path), text_a="text"), ["pos", "neg"])
    msg = str(err.value)
    assert "line 3: unknown label 'neutral'; line 4: unknown label 'mixed'" in msg
    assert msg.count("the labels are ['neg', 'pos']") == 1 and msg.endswith("the labels are ['neg', 'pos']")


def test_file_is_left_untouched_after_a_validation_error(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n,pos\n")
    before = path.read_bytes()
    with pytest.raises(DataValidationError):
        load_examples(DataSpec(str(path), text_a="text"), ["pos"])
    assert path.read_bytes() == before


def test_unlabeled_split_needs_no_label_column(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("text\nhello\nworld\n")
    exs = load_examples(DataSpec(str(path), text_a="text", label=None), require_labels=False)
    assert [e.label for e in exs] == [None, None]


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DataValidationError, match="not found"):
        load_examples(DataSpec(str(tmp_path / "nope.csv")))
    (tmp_path / "x.dat").write_text("a")
    with pytest.raises(DataValidationError, match="set `format`"):
        load_examples(DataSpec(str(tmp_path / "x.dat")))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataValidationError, match=r"empty.csv: the file is empty \(0 bytes\)"):
        load_examples(DataSpec(str(tmp_path / "empty.csv")))


def test_limit_with_seed_is_a_reproducible_sample(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(50)], "label": ["a"] * 50}).to_csv(path, index=False)
    a = load_examples(DataSpec(str(path), text_a="text", limit=5, seed=3))
    b = load_examples(DataSpec(str(path), text_a="text", limit=5, seed=3))
    assert [e.text_a for e in a] == [e.text_a for e in b] and len(a) == 5
    assert [e.text_a for e in a] != [f"t{i}" for i in range(5)]


def test_digests_depend_on_content_only(tmp_path):
    a = InputExample("x", "y", "pos", "1")
    assert example_digest(a) == example_digest(InputExample("x", "y", "neg", "7"))
    assert example_digest(a) != example_digest(InputExample("x", None))
    assert examples_digest([a]) != examples_digest([InputExample("x", "y", "neg")])
    path = save_examples([a], tmp_path / "s.jsonl")
    assert read_examples(path) == [a]


def test_real_lmbff_split_loads(request):
    from conftest import SHARED

    path = SHARED / "data/lmbff_kshot/SST-2/16-42/train.tsv"
    if not path.exists():
        pytest.skip("shared data not present")
    exs = load_examples(DataSpec(str(path), text_a="sentence"), ["0", "1"])
    assert len(exs) == 32 and {e.label for e in exs} == {"0", "1"}


@pytest.mark.parametrize(
    "name,content,spec,needle",
    [
        # CSV/TSV: the header is line 1, so the third data row is line 4
        ("d.csv", "text,label\ngood,pos\nbad,neg\n,pos\n", {}, "line 4: empty 'text'"),
        ("d.tsv", "text\tlabel\ngood\tpos\nmeh\tneutral\n", {}, "line 3: unknown label 'neutral'"),
        # a blank line (pandas skips it) and a quoted text over three lines: the row index is not the line
        ("d.csv", "text,label\ngood,pos\n\nbad,neg\n,pos\n", {}, "line 5: empty 'text'"),
        ("d.csv", 'text,label\n"a long\n\ntext",pos\n"",neg\n', {}, "line 5: empty 'text'"),
        ("d.csv", "good,pos\n   \n,neg\n", {"text_a": "0", "label": "1", "header": False}, "line 3: empty '0'"),
        ("d.csv", "good,pos\n,neg\n", {"text_a": "0", "label": "1", "header": False}, "line 2: empty '0'"),
        # JSON Lines: blank lines still count as lines
        ("d.jsonl", '{"text": "a", "label": "pos"}\n\n{"text": "b", "label": "bad"}\n', {}, "line 3: unknown label 'bad'"),
        ("d.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "lab', {}, "line 2, column 15: not valid JSON"),
        ("d.json", '[{"text": "a", "label": "pos"},\n {"text": "b", "label": }]', {}, "line 2, column 25: not valid JSON"),
        ("d.json", '[{"text": "a", "label": "pos"}, {"text": "", "label": "pos"}]', {}, "record 2: empty 'text'"),
    ],
)
def test_errors_name_the_line_an_editor_shows(tmp_path, name, content, spec, needle):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataValidationError, match=needle.replace("(", r"\(")):
        load_examples(DataSpec(str(path), **{"text_a": "text", "label": "label", **spec}), ["pos", "neg"])


def test_non_utf8_names_line_and_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label\ngood,pos\ncaf\xe9 ok,neg\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"line 3, column 4: not UTF-8 \(byte 0xe9\)"):
        load_examples(DataSpec(str(path), text_a="text"), ["pos", "neg"])


def test_an_unquoted_comma_is_an_error_naming_its_line_not_a_lost_text(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"fine, really",pos\na gripping, funny film,pos\n')
    with pytest.raises(DataValidationError, match=r"line 3 has 3 fields where the first line has 2: quote texts that contain ','"):
        load_examples(DataSpec(str(path), text_a="text"), ["pos", "neg"])


@pytest.mark.parametrize("content, needle", [
    ("text,id\nfine movie,1\n\nbad movie,2\n\"\",3\n", "1 bad row(s): line 5: empty 'text'"),
    # one column: a quoted "" is a row (an empty text), a line of spaces is skipped as blank
    ('text\na\n""\n   \nb\n""\n', "2 bad row(s): line 3: empty 'text'; line 6: empty 'text'"),
    # a row of separators alone (Excel's empty row) is skipped as a blank line is; an empty text beside an id is not
    ("text,id\nfine movie,1\n,\n , \nbad movie,2\n,3\n,\n", "1 bad row(s): line 6: empty 'text'"),
])
def test_streamed_and_unlabeled_reads_name_the_line_after_a_blank_one(tmp_path, content, needle):
    # `pet predict` and the unlabeled pool reported the row index plus the header: a line too early
    from pet_io import table_stream
    from pet_io.unlabeled import open_unlabeled

    path = tmp_path / "pool.csv"
    path.write_text(content)
    with pytest.raises(DataValidationError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        table_stream.check_texts(path, "csv", ["text"])
    with pytest.raises(DataValidationError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        open_unlabeled(DataSpec(str(path), text_a="text", label=None), tmp_path / "cache")


def test_rows_of_empty_fields_alone_are_skipped_as_blank_lines(tmp_path):
    """Excel writes an empty row of a sheet as ',,': it was refused as an empty text, naming its line, where
    a blank line is skipped. An empty text with a label is still refused."""
    from pet_io import table_stream
    from pet_io.sources import blank_lines, record_lines
    from pet_io.unlabeled import open_unlabeled, skipped_lines

    path = tmp_path / "d.csv"
    path.write_text('text,label,note\ngood,pos,\n,,\n\n"",, \nbad,neg,x\n,\n')
    assert blank_lines(path, "csv") == [3, 4, 5, 7]
    assert record_lines(path, "csv") == [2, 3, 5, 6, 7]  # the rows pandas reads, to place them
    assert record_lines(path, "csv", empty_rows=False) == [2, 6]
    spec = DataSpec(str(path), text_a="text")
    assert [(e.text_a, e.label) for e in load_examples(spec, ["pos", "neg"])] == [("good", "pos"), ("bad", "neg")]
    assert list(open_unlabeled(DataSpec(str(path), text_a="text", label=None), tmp_path / "cache")["text_a"]) == ["good", "bad"]
    assert table_stream.check_texts(path, "csv", ["text"]) == 2
    assert [len(c) for c in table_stream.iter_chunks(path, "csv", 2)] == [1, 1, 0]
    assert skipped_lines(spec) == f"{path}: 4 empty line(s) skipped, no text there (line 3, 4, 5, 7)"
    path.write_text("text,label\ngood,pos\nbad,neg\n,\n,\n")  # Excel's: the last rows of a sheet
    assert len(open_unlabeled(DataSpec(str(path), text_a="text", label=None), tmp_path / "cache1")) == 2
    path.write_text("text,label\ngood,pos\n,\n,neg\n")
    with pytest.raises(DataValidationError, match="1 bad row\\(s\\): line 4: empty 'text'"):
        load_examples(spec, ["pos", "neg"])
    path.write_text("text,label\n,\n\t,\n")  # nothing but empty rows: no rows, as a file of blank lines
    with pytest.raises(DataValidationError, match="no rows"):
        open_unlabeled(DataSpec(str(path), text_a="text", label=None), tmp_path / "cache2")


def test_blank_lines_are_found_and_a_quoted_empty_line_is_not_one(tmp_path):
    from pet_io.sources import blank_lines, record_lines

    path = tmp_path / "d.csv"
    path.write_text('text,label\na,0\n \n"two\n\nlines",1\n\nb,1\n')
    assert blank_lines(path, "csv") == [3, 7]
    assert record_lines(path, "csv") == [2, 4, 8]


def test_a_run_says_which_lines_of_a_labeled_split_it_skipped(tmp_path, tiny_model_dir, caplog):
    # pandas skips blank lines, the readers rows of separators alone: in train or dev as in the unlabeled file, said
    import logging

    import yaml

    from pet_config.loading import load_config
    from tasks.data_tasks import load_and_validate

    (tmp_path / "train.csv").write_text("text,label\nit was great,pos\n,\nit was awful,neg\n\n"
                                        + "".join(f"t{i} fine,pos\nt{i} bad,neg\n" for i in range(3)))
    cfg = {"name": "skips", "model": {"path": str(tiny_model_dir)}, "labels": ["pos", "neg"],
           "data": {"train": {"path": "train.csv", "text_a": "text"}}, "patterns": ["{text_a} it was {mask}"],
           "verbalizer": {"label_words": {"pos": ["great"], "neg": ["awful"]}}, "work_dir": "work"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with caplog.at_level(logging.WARNING, logger="pet"):
        data = load_and_validate.fn(load_config(tmp_path / "config.yaml"))
    assert data["train"].n == 8
    assert f"{tmp_path / 'train.csv'}: 2 empty line(s) skipped, no text there (line 3, 5)" in caplog.text
