"""The pipeline slot: one per (name, work folder), and quiet while it waits."""
import logging

from flows.common import _SlotTimeoutNoise, slot_name
from pet_config.loading import config_from_dict


def _cfg(work_dir, name="sst2"):
    return config_from_dict({"name": name, "labels": ["0", "1"], "model": {"path": str(work_dir)},
                             "data": {"train": {"path": "t.csv"}}, "patterns": ["{text_a} It was {mask} ."],
                             "verbalizer": {"label_words": {"0": ["bad"], "1": ["good"]}}, "work_dir": str(work_dir)})


def test_one_slot_per_name_and_work_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    # a run killed in folder a must not hold up the same-named pipeline in folder b
    assert slot_name(_cfg(a)) != slot_name(_cfg(b))
    assert slot_name(_cfg(a)) != slot_name(_cfg(a, "other"))
    assert slot_name(_cfg(a)).startswith("pet-pipeline-sst2-")
    # the same folder reached by another path (a shared folder mounted elsewhere) is the same pipeline
    (tmp_path / "mount").symlink_to(a)
    assert slot_name(_cfg(tmp_path / "mount")) == slot_name(_cfg(a)) == slot_name(_cfg(tmp_path / "x" / ".." / "a"))
    assert [p.name for p in (a / "runs").iterdir()] == ["folder.id"]  # no temp file left


def _record(service, item):
    return logging.LogRecord("prefect._internal.concurrency", logging.ERROR, __file__, 1,
                             "Service %r failed to process item %r", (service, item), None)


def test_a_polling_timeout_is_not_logged_as_an_error():
    quiet = _SlotTimeoutNoise()
    timeout = (1, "concurrency", 30.0, None, 300, True, None, "<Future state=finished raised TimeoutError>")
    assert not quiet.filter(_record("ConcurrencySlotAcquisitionWithLeaseService", timeout))
    # any other failure still shows
    assert quiet.filter(_record("ConcurrencySlotAcquisitionWithLeaseService", (1, "<Future raised HTTPStatusError>")))
    assert quiet.filter(_record("APILogWorker", timeout))
