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


class _Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


class _Seen(_SlotTimeoutNoise):
    """The filter as pipeline_slot installs it, remembering what it was asked about."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def filter(self, record):
        self.seen.append(record)
        return super().filter(record)


def test_a_polling_timeout_is_not_logged_as_an_error(prefect_harness):
    """The record Prefect itself logs when a slot request times out (as pipeline_slot's polling does
    while another run holds the slot) reaches the filter on the logger pipeline_slot quiets, and is
    dropped there; other failures of that logger still show."""
    import time

    import pytest
    from prefect import get_client
    from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError
    from prefect.concurrency.sync import concurrency

    name = "pipeline-slot-noise-test"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    noise = logging.getLogger("prefect._internal.concurrency")
    kept, quiet = _Kept(), _Seen()
    noise.addHandler(kept)
    noise.addFilter(quiet)
    try:
        with concurrency(name, occupy=1, strict=True):  # another run holds the slot
            with pytest.raises(AcquireConcurrencySlotTimeoutError):
                with concurrency(name, occupy=1, strict=True, timeout_seconds=1):
                    pass
        deadline = time.monotonic() + 30  # the service logs from its own thread, after the caller gave up
        while not any("TimeoutError" in r.getMessage() for r in quiet.seen) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        noise.removeFilter(quiet)
        noise.removeHandler(kept)
    real = [r for r in quiet.seen if "TimeoutError" in r.getMessage()]
    assert real and real[0].levelno == logging.ERROR, "Prefect no longer logs a timed-out slot request"
    assert not [r for r in kept.records if r.levelno >= logging.ERROR]
    # any other failure of that logger still shows
    service, item = real[0].args
    assert quiet.filter(logging.makeLogRecord({**real[0].__dict__, "args": (service, "<Future raised HTTPStatusError>")}))
    assert quiet.filter(logging.makeLogRecord({**real[0].__dict__, "args": ("APILogWorker", item)}))


def test_a_run_through_another_prefect_server_is_waited_for(prefect_harness, tmp_path, monkeypatch, caplog):
    """A command run without PREFECT_API_URL takes the slot of its own temporary server, which this server's limit
    cannot see: the holder it records in the work folder makes a run here wait until its process ends (an operator's
    `pet relabel` beside the served deployment ran at the same time before)."""
    import subprocess
    import sys
    import threading
    import time
    import uuid

    from flows import common, recovery

    cfg = _cfg(tmp_path / "work")
    monkeypatch.setattr(common, "SLOT_POLL_SECONDS", 0.2)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = recovery.SlotHolder.me(str(uuid.uuid4()))  # a flow run this server has never seen
        holder = recovery.SlotHolder(other.pid, holder.host, recovery._process_start(other.pid), holder.flow_run_id)
        recovery.write_holder(cfg, holder)
        entered = threading.Event()

        def run():
            with common.pipeline_slot(cfg, logging.getLogger("slot-test")):
                entered.set()

        with caplog.at_level(logging.INFO, logger="slot-test"):
            waiter = threading.Thread(target=run)
            waiter.start()
            time.sleep(2)
            assert not entered.is_set()  # the other server's run still lives: this one waits
            other.kill()
            other.wait()
            waiter.join(timeout=60)
        assert entered.is_set()
        assert any("through another Prefect server" in r.getMessage() for r in caplog.records)
        assert any("a killed run left the pipeline slot taken" in r.getMessage() for r in caplog.records)
        assert recovery.read_holder(cfg) is None  # this run's record cleared on leaving
    finally:
        other.kill()
