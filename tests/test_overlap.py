"""Evaluation texts that the run also learns from are counted (pet_io.overlap)."""
import pyarrow as pa
import pyarrow.parquet as pq

from pet_io.overlap import Overlap, found_in_parquet, overlaps, text_key
from prompt_models.examples import InputExample


def ex(a, b=None, label="x"):
    return InputExample(text_a=a, text_b=b, label=label)


def test_case_and_white_space_do_not_hide_a_copy():
    assert text_key("A  good\tfilm ") == text_key("a good film")
    assert text_key("a", "b c") != text_key("a b", "c")  # a pair is not the concatenation of its texts


def test_counts_dev_and_test_texts_found_in_train_and_in_the_unlabeled_copy(tmp_path):
    path = tmp_path / "unlabeled.parquet"
    rows = [f"pool text {i}" for i in range(25)] + ["The  TEST one"]
    pq.write_table(pa.table({"text_a": rows, "text_b": [None] * len(rows)}), path)
    train = [ex("a train text"), ex("another")]
    dev = [ex("A train text"), ex("new"), ex("new")]  # a repeated dev text counts once
    test = [ex("the test one"), ex("pool text 3"), ex("pool text 30")]
    found = overlaps({"dev": dev, "test": test}, train, str(path))
    assert found == [Overlap("dev", "train", 1, 2), Overlap("test", "unlabeled", 2, 3)]
    assert found[1].line() == "2 of 3 distinct test texts are also in unlabeled"
    # read in batches smaller than the file: matches in every batch are found
    assert found_in_parquet({text_key("pool text 0"), text_key("the test one")}, str(path), batch_rows=4) == \
        {text_key("pool text 0"), text_key("the test one")}


def test_pairs_match_on_both_texts(tmp_path):
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"text_a": ["q1", "q2"], "text_b": ["p1", "p2"]}), path)
    found = overlaps({"test": [ex("q1", "p1"), ex("q2", "p1")]}, [], str(path))
    assert found == [Overlap("test", "unlabeled", 1, 2)]


def test_nothing_shared_reports_nothing(tmp_path):
    assert overlaps({"dev": [ex("a")], "test": [ex("b")]}, [ex("c")], None) == []

