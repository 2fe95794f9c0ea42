"""The unlabeled split through HF datasets: every format, text kept as written, errors by file line,
a Parquet copy with the same digest, and shards cut from it batch by batch."""
import json

import pandas as pd
import pytest

from pet_io.example_files import read_examples
from pet_io.sources import DataSpec, DataValidationError
from pet_io.unlabeled import open_unlabeled, write_copy
from prompt_models.examples import InputExample, examples_digest

TEXTS = ["01", "a fine film", "the plot, sadly, drags", "great !", "a fine film"]


def _write(tmp_path, fmt, texts=TEXTS):
    df = pd.DataFrame({"id": range(len(texts)), "sentence": texts})
    path = tmp_path / f"u.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in df.to_dict("records")))
    else:
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_every_format_gives_the_texts_as_written(tmp_path, fmt):
    ds = open_unlabeled(DataSpec(str(_write(tmp_path, fmt)), text_a="sentence", label=None), tmp_path / "cache")
    assert ds["text_a"] == TEXTS  # "01" stays text, duplicates are kept (shards drop them)
    copy = write_copy(ds, tmp_path / "data")
    assert copy.n == len(TEXTS)
    assert copy.digest == examples_digest([InputExample(t) for t in TEXTS])
    assert [e.text_a for e in read_examples(copy.path)] == TEXTS


def test_limit_and_seed_sample_without_reading_into_memory(tmp_path):
    spec = DataSpec(str(_write(tmp_path, "csv")), text_a="sentence", label=None, limit=3, seed=0)
    a = open_unlabeled(spec, tmp_path / "cache")["text_a"]
    assert len(a) == 3 and a == open_unlabeled(spec, tmp_path / "cache")["text_a"]


@pytest.mark.parametrize("fmt,needle", [("csv", "line 4: empty 'sentence'"), ("jsonl", "line 3: empty 'sentence'")])
def test_empty_texts_are_reported_by_the_line_an_editor_shows(tmp_path, fmt, needle):
    path = _write(tmp_path, fmt, ["ok", "fine", " ", "good"])
    with pytest.raises(DataValidationError, match=needle):
        open_unlabeled(DataSpec(str(path), text_a="sentence", label=None), tmp_path / "cache")


def test_broken_jsonl_names_its_line(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text('{"sentence": "ok"}\n{"sentence": "fine"}\n{"sentence": "cut\n')
    with pytest.raises(DataValidationError, match="line 3, column"):
        open_unlabeled(DataSpec(str(path), text_a="sentence", label=None), tmp_path / "cache")


def test_missing_column_names_the_columns_present(tmp_path):
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['text'\]; the file has \['id', 'sentence'\]"):
        open_unlabeled(DataSpec(str(_write(tmp_path, "csv")), text_a="text", label=None), tmp_path / "cache")


def test_shards_are_cut_from_the_copy_without_duplicates(tmp_path, tiny_model_dir, caplog):
    from pet_config.loading import config_from_dict
    from tasks.label_tasks import make_shards

    texts = [f"text number {i}" for i in range(25)] + ["text number 3"]
    ds = open_unlabeled(DataSpec(str(_write(tmp_path, "parquet", texts)), text_a="sentence", label=None), tmp_path / "c")
    copy = write_copy(ds, tmp_path / "data")
    cfg = config_from_dict({"model": {"path": str(tiny_model_dir)}, "pet": {"shard_size": 10}, "work_dir": str(tmp_path / "w")})
    with caplog.at_level("INFO", logger="pet"):
        shards = make_shards.fn(cfg, copy.path, exclude=[])
    assert [s.n for s in shards] == [10, 10, 5]
    assert sorted(e.text_a for s in shards for e in read_examples(s.path)) == sorted(set(texts))
    assert "1 repeated unlabeled text(s) soft-labeled once" in caplog.text  # the count adds up: 26 rows, 25 labeled


def test_an_unquoted_comma_in_unlabeled_text_names_its_line(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("sentence\na gripping, funny film\na dull, lifeless mess\n")
    with pytest.raises(DataValidationError, match="line 2 has 2 fields"):
        open_unlabeled(DataSpec(str(path), text_a="sentence", label=None), tmp_path / "cache")


def test_one_reader_gives_labeled_lists_and_the_unlabeled_dataset_and_writes_nothing(tmp_path):
    from pet_io.reader import read_splits

    (tmp_path / "train.csv").write_text("sentence,label\na fine film,pos\na dull film,neg\n")
    unlabeled = _write(tmp_path, "jsonl")
    before = sorted(tmp_path.rglob("*"))
    specs = {"train": DataSpec(str(tmp_path / "train.csv"), text_a="sentence"),
             "unlabeled": DataSpec(str(unlabeled), text_a="sentence"), "dev": None}
    splits = read_splits(specs, ["pos", "neg"])  # no Arrow cache given: a scratch one, removed on return
    assert sorted(splits) == ["train", "unlabeled"]
    assert [ex.label for ex in splits["train"][1]] == ["pos", "neg"]
    spec, ds = splits["unlabeled"]
    assert spec.label is None and ds["text_a"] == TEXTS
    assert sorted(tmp_path.rglob("*")) == before


def test_gold_indices_follow_the_label_order_and_name_an_unknown_label():
    from prompt_models.examples import gold_indices

    examples = [InputExample("a", label="neg"), InputExample("b", label="pos")]
    assert gold_indices(examples, ["pos", "neg"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="unknown label 'meh'"):
        gold_indices([InputExample("c", label="meh")], ["pos", "neg"])


def test_header_names_follow_the_splits_read_options(tmp_path):
    # a TSV read with quoting (read_options) names its quoted header "text", as the labeled splits' reader does
    path = tmp_path / "u.tsv"
    path.write_text('"text"\t"label"\n"a fine film"\t1\n"a dull one"\t0\n')
    spec = DataSpec(str(path), text_a="text", label=None, read_options={"quoting": 0})
    assert open_unlabeled(spec, tmp_path / "cache")["text_a"] == ["a fine film", "a dull one"]


def test_a_header_line_alone_is_no_rows(tmp_path):
    # the watcher quarantined such a file with `datasets`' 'Instruction "train" corresponds to no data!'
    path = tmp_path / "u.csv"
    path.write_text("sentence\n")
    with pytest.raises(DataValidationError, match=r"u\.csv: no rows \(a header line only\)$"):
        open_unlabeled(DataSpec(str(path), text_a="sentence", label=None), tmp_path / "cache")
