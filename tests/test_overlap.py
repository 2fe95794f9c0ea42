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


def test_accuracy_no_better_than_the_most_frequent_label_is_flagged(tmp_path):
    """A run that registers a classifier worse than a constant answer says so (a reference; nothing is decided)."""
    import json
    from types import SimpleNamespace

    import mlflow

    from flows.cli import summary_line
    from tasks.promotion import below_majority

    def split(name, labels):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text_a": f"t{i}", "label": lab}) + "\n" for i, lab in enumerate(labels)))
        return SimpleNamespace(path=str(path))

    data = {"dev": split("dev", ["a", "b"] * 4), "test": split("test", ["a"] * 6 + ["b"] * 2)}  # test: 'a' scores 0.75
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run() as run:
        lines = below_majority(data, {"the ensemble": {"dev_accuracy": 0.75, "test_accuracy": 0.80},
                                      "the classifier": {"dev_accuracy": 0.50, "test_accuracy": 0.70}})
    assert lines == ["the classifier's dev accuracy 0.500 is no better than always answering 'a' (0.500)",
                     "the classifier's test accuracy 0.700 is no better than always answering 'a' (0.750)"]
    assert mlflow.get_run(run.info.run_id).data.metrics == {"majority_dev_accuracy": 0.5, "majority_test_accuracy": 0.75}
    cfg = SimpleNamespace(tracking_uri=lambda: "sqlite:///x.db", work_path=tmp_path)
    assert f"WARNING {lines[1]}" in summary_line("run", cfg, {"below_majority": lines})
