"""The one atomic writer: concurrent writers of one target never share a temp file, a failed write leaves nothing."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from pet_io.atomic import atomic_path, save_npy_atomic, write_json_atomic
from pet_io.example_files import read_examples, save_examples
from pet_io.table_stream import atomic_writer
from prompt_models.examples import InputExample

ROUNDS = 20


def hammer(write, n_threads: int = 4) -> list[BaseException]:
    """Each thread writes its own complete version of the same target ROUNDS times, all at once."""
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def worker(k: int) -> None:
        start.wait()
        try:
            for _ in range(ROUNDS):
                write(k)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def only_target_left(folder, name: str) -> None:
    assert [p.name for p in folder.iterdir()] == [name]  # no temp file left behind


def test_concurrent_json_writers_leave_one_complete_file(tmp_path):
    target = tmp_path / "state.json"
    versions = {k: {"writer": k, "rows": [k] * 5000} for k in range(4)}  # big enough to be written in pieces
    assert hammer(lambda k: write_json_atomic(target, versions[k])) == []
    assert json.loads(target.read_text()) in versions.values()
    only_target_left(tmp_path, "state.json")


def test_concurrent_npy_writers_leave_one_complete_array(tmp_path):
    target = tmp_path / "logits.npy"
    assert hammer(lambda k: save_npy_atomic(target, np.full((500, 50), k, dtype=np.float32))) == []
    arr = np.load(target)
    assert arr.shape == (500, 50) and len(np.unique(arr)) == 1
    only_target_left(tmp_path, "logits.npy")


def test_concurrent_example_writers_leave_one_complete_file(tmp_path):
    target = tmp_path / "train.jsonl"
    sets = {k: [InputExample(f"text {k} {i}", label=str(k)) for i in range(2000)] for k in range(4)}
    assert hammer(lambda k: save_examples(sets[k], target)) == []
    assert read_examples(target) in sets.values()
    only_target_left(tmp_path, "train.jsonl")


def test_concurrent_table_writers_leave_one_complete_file(tmp_path):
    import pandas as pd

    target = tmp_path / "out.csv"

    def write(k: int) -> None:
        with atomic_writer(target, "csv") as writer:
            for _ in range(3):
                writer.write(pd.DataFrame({"writer": [k] * 1000}))

    assert hammer(write) == []
    df = pd.read_csv(target)
    assert len(df) == 3000 and df["writer"].nunique() == 1
    only_target_left(tmp_path, "out.csv")


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "state.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "trunc')
            raise RuntimeError("interrupted mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    only_target_left(tmp_path, "state.json")
